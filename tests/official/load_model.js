'use strict'

// Loads a model.json with the OFFICIAL runner's own loader (lib/server-code/model/descriptor.js,
// ServerCodeModelDescriptor.load, which is what a pro/cloud worker calls for every task that has a
// `provider`) and prints ONE JSON line on stdout:
//   {"ok":true,"handlers":N,"timers":N,"services":N,"types":N,"typesFiles":[...]}
//   {"ok":false,"error":"..."}   (exit code 1)
//
//   node load_model.js --modules <node_modules> [--app <appDir>] <path/to/model.json>
//
// With --app, the descriptor is also used the way a worker uses it: getModelForFile(provider) for
// every provider named in model.json, which requires the JS files of <appDir> and fails the way a
// task would fail. Without --app only the descriptor itself is loaded (no JS needed).

const fs = require('fs')
const os = require('os')
const path = require('path')

// The runner's logger prints to stdout; keep stdout for the single JSON line.
const toStderr = (...args) => process.stderr.write(require('util').format(...args) + '\n')
console.log = console.info = console.warn = console.error = console.debug = toStderr

function parseArgs() {
  const argv = process.argv.slice(2)
  const opts = { modules: null, app: null, file: null }

  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--modules') {
      opts.modules = argv[++i]
    } else if (argv[i] === '--app') {
      opts.app = argv[++i]
    } else if (!opts.file) {
      opts.file = argv[i]
    } else {
      throw new Error(`unexpected argument ${ argv[i] }`)
    }
  }

  if (!opts.modules || !opts.file) {
    throw new Error('usage: node load_model.js --modules <node_modules> [--app <appDir>] <path/to/model.json>')
  }

  return opts
}

function count(dict) {
  return Object.keys(dict || {}).length
}

function main() {
  const opts = parseArgs()
  const runnerRoot = path.join(path.resolve(opts.modules), 'backendless-coderunner')

  require(path.join(runnerRoot, 'lib')) // installs Backendless.ServerCode, as a worker does

  const Descriptor = require(path.join(runnerRoot, 'lib/server-code/model/descriptor'))

  const file = path.resolve(opts.file)
  let descriptor

  if (opts.app) {
    // Same constructor load() uses, with the app directory as the base path.
    if (!fs.existsSync(file)) {
      throw new Error(`Model Descriptor not found (${ file })`)
    }

    descriptor = new Descriptor(path.resolve(opts.app), JSON.parse(fs.readFileSync(file, 'utf8')))
  } else {
    // load() always reads <dir>/model.json; copy other file names into a temporary dir.
    let dir = path.dirname(file)
    let tmp = null

    if (path.basename(file) !== 'model.json' && fs.existsSync(file)) {
      dir = tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'load-model-'))
      fs.copyFileSync(file, path.join(dir, 'model.json'))
    }

    try {
      descriptor = Descriptor.load(dir)
    } finally {
      if (tmp) {
        fs.rmSync(tmp, { recursive: true, force: true })
      }
    }
  }

  const raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  const typesFiles = descriptor.typesFiles
  const result = {
    ok        : true,
    handlers  : count(descriptor.handlers),
    timers    : count(raw.timers),
    services  : count(descriptor.services),
    types     : count(descriptor.types),
    typesFiles: typesFiles,
  }

  if (opts.app) {
    const providers = new Set()

    Object.values(descriptor.handlers).forEach(h => providers.add(h.provider))
    Object.values(descriptor.services).forEach(s => providers.add(s.provider))
    ;(raw.timers || []).forEach(t => providers.add(t.provider))

    let model = null

    providers.forEach(provider => {
      model = descriptor.getModelForFile(provider)
    })

    if (model) {
      result.loaded = {
        handlers: model.handlers.keys().length,
        timers  : model.timers.keys().length,
        services: model.services.keys().length,
        types   : model.types.keys().length,
      }
    }
  }

  process.stdout.write(JSON.stringify(result) + '\n')
}

try {
  main()
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, error: e.message || String(e) }) + '\n')
  process.exit(1)
}
