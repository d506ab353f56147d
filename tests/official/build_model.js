'use strict'

// Builds model.json for an app directory with the official package's own model builder: the same
// ServerCodeModel.build(cwd, exclude) + JSON.stringify(model) that `coderunner deploy`
// (lib/server-code/publisher.js) puts into the deploy zip, with the same refusals
// ("Nothing to publish", model errors).
//
//   node build_model.js --modules <node_modules> <appDir> <out/model.json>
//
// The runner's logger writes to stdout; callers that need a clean stdout should redirect it.

const fs = require('fs')
const path = require('path')

function main() {
  const argv = process.argv.slice(2)
  let modules = null
  const rest = []

  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--modules') {
      modules = argv[++i]
    } else {
      rest.push(argv[i])
    }
  }

  if (!modules || rest.length !== 2) {
    process.stderr.write('usage: node build_model.js --modules <node_modules> <appDir> <out/model.json>\n')
    process.exit(2)
  }

  const appDir = path.resolve(rest[0])
  const out = path.resolve(rest[1])
  const runnerRoot = path.join(path.resolve(modules), 'backendless-coderunner')

  // lib/index.js installs Backendless.ServerCode (the registration API) as the CLI does.
  require(path.join(runnerRoot, 'lib'))

  const ServerCodeModel = require(path.join(runnerRoot, 'lib/server-code/model'))

  process.chdir(appDir)

  const model = ServerCodeModel.build(process.cwd(), [])

  if (model.isEmpty()) {
    throw new Error('Nothing to publish')
  }

  if (model.errors.length) {
    throw new Error(`Model errors: ${ JSON.stringify(model.errors) }`)
  }

  fs.writeFileSync(out, JSON.stringify(model))
}

try {
  main()
} catch (e) {
  process.stderr.write(`build_model: ${ e.stack || e }\n`)
  process.exit(1)
}
