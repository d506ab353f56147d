'use strict'

// Starts the UNMODIFIED official Backendless JS CodeRunner (backendless-coderunner@8.0.3) in `pro`
// mode on loopback, for differential tests against our Rust runner.
//
//   node start.js --modules <node_modules> --work <scratch dir>
//                 [--compression] [--no-consul] [--no-cache] [--verbose] [--quiet]
//                 [--ready-timeout <s>]
//
// It starts, all on 127.0.0.1:
//   - a PRIVATE redis-server on a free port (never the shared 6379);
//   - an API-server stand-in (GET /{appId}/{apiKey}/info, PUT /{appId}/{apiKey}/log -> 200);
//   - a Consul KV stand-in (default; --no-consul configures the runner with flags + env instead);
//   - `coderunner pro`, with the worker cache on (limit 4) unless --no-cache, and compression
//     (`compression.prod`) off unless --compression.
// It lays out {work}/repo/{appid lower-case}/{relativePath}/ with ./app and a model.json built
// by the official model builder (build_model.js), waits until the runner is BLPOPing
// CODE_RUNNER_DRIVER and its idle workers are up, prints ONE JSON line on stdout, and then runs
// until stdin closes, SIGTERM or SIGINT; then it stops everything it started and exits 0.
// Every wait is bounded; failures are reported on stderr with a non-zero exit.

const fs = require('fs')
const http = require('http')
const net = require('net')
const path = require('path')
const { spawn, spawnSync } = require('child_process')

const APP_ID = 'C0DE0000-0000-4000-8000-0FF1C1A10001'
const API_KEY = 'F0E1D2C3-B4A5-4968-8776-655443322110'
const RELATIVE_PATH = 'servercode/JS/default'
const EXPECTED_VERSION = '8.0.3'
const WORKERS = 4 // the package defaults (workers.concurrent / workers.minIdle), stated explicitly
const CACHE_LIMIT = 4

const started = { runner: null, redis: null, servers: [] }
let stopping = false
let runnerLog = null

function log(...args) {
  process.stderr.write(`[start.js] ${ require('util').format(...args) }\n`)
}

function fail(message) {
  log(`ERROR: ${ message }`)

  return shutdown(1)
}

function parseArgs() {
  const argv = process.argv.slice(2)
  const opts = {
    modules     : null,
    work        : null,
    compression : false,
    consul      : true,
    cache       : true,
    verbose     : false,
    quiet       : false,
    readyTimeout: 60,
  }

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]

    if (a === '--modules') opts.modules = argv[++i]
    else if (a === '--work') opts.work = argv[++i]
    else if (a === '--compression') opts.compression = true
    else if (a === '--no-consul') opts.consul = false
    else if (a === '--no-cache') opts.cache = false
    else if (a === '--verbose') opts.verbose = true
    else if (a === '--quiet') opts.quiet = true
    else if (a === '--ready-timeout') opts.readyTimeout = Number(argv[++i])
    else throw new Error(`unknown argument: ${ a }`)
  }

  if (!opts.modules || !opts.work) {
    throw new Error('usage: node start.js --modules <node_modules> --work <scratch dir> [--compression] ' +
      '[--no-consul] [--no-cache] [--verbose] [--quiet] [--ready-timeout <s>]')
  }

  opts.modules = path.resolve(opts.modules)
  opts.work = path.resolve(opts.work)

  return opts
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

async function freePorts(n) {
  const servers = []

  for (let i = 0; i < n; i++) {
    const server = net.createServer()

    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })

    servers.push(server)
  }

  const ports = servers.map(s => s.address().port)

  await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))

  return ports
}

function copyDir(src, dst) {
  fs.mkdirSync(dst, { recursive: true })

  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'model.json') continue

    const s = path.join(src, entry.name)
    const d = path.join(dst, entry.name)

    if (entry.isDirectory()) copyDir(s, d)
    else if (entry.isFile()) fs.copyFileSync(s, d)
  }
}

function lineSplitter(onLine) {
  let buf = ''

  return chunk => {
    buf += chunk.toString('utf8')

    let idx

    while ((idx = buf.indexOf('\n')) !== -1) {
      onLine(buf.slice(0, idx))
      buf = buf.slice(idx + 1)
    }
  }
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server.address().port))
  })
}

function readBody(req) {
  return new Promise(resolve => {
    const chunks = []

    req.on('data', c => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })
}

// ---------------------------------------------------------------- API-server stand-in

async function startApiStub(opts) {
  const journal = path.join(opts.work, 'api-stub.jsonl')
  const infoPath = `/${ APP_ID }/${ API_KEY }/info`
  const logPath = `/${ APP_ID }/${ API_KEY }/log`

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req)
    const url = req.url.split('?')[0]
    let status = 404
    let reply = JSON.stringify({ code: 0, message: `not stubbed: ${ req.method } ${ url }` })

    if (req.method === 'GET' && url === infoPath) {
      status = 200
      reply = '{}'
    } else if (req.method === 'PUT' && url === logPath) {
      status = 200
      reply = ''
    }

    const entry = {
      time   : Date.now(),
      method : req.method,
      url    : req.url,
      status,
      headers: req.headers,
      body,
    }

    fs.appendFileSync(journal, JSON.stringify(entry) + '\n')

    if (!opts.quiet) {
      process.stderr.write(`[api-stub] ${ req.method } ${ req.url } -> ${ status } ` +
        `user-token=${ req.headers['user-token'] || '' } ${ body }\n`)
    }

    res.writeHead(status, status === 200 && reply === '' ? {} : { 'content-type': 'application/json' })
    res.end(reply)
  })

  started.servers.push(server)

  return listen(server)
}

// ---------------------------------------------------------------- Consul KV stand-in

// Serves GET /v1/kv/<key>?raw (the value) and GET /v1/kv/<prefix>?recurse (JSON list with base64
// values), and 404 for anything not in `kv`, like Consul does. Only the keys below are served.
async function startConsulStub(opts, kv) {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1')
    const key = decodeURIComponent(u.pathname.replace(/^\/v1\/kv\//, ''))
    let status = 404
    let body = ''
    let type = 'text/plain; charset=utf-8'

    if (req.method === 'GET' && u.pathname.startsWith('/v1/kv/')) {
      if (u.searchParams.has('recurse')) {
        const keys = Object.keys(kv).filter(k => k.startsWith(key)).sort()

        if (keys.length) {
          status = 200
          type = 'application/json'
          body = JSON.stringify(keys.map((k, i) => ({
            LockIndex  : 0,
            Key        : k,
            Flags      : 0,
            Value      : Buffer.from(kv[k]).toString('base64'),
            CreateIndex: i + 1,
            ModifyIndex: i + 1,
          })))
        }
      } else if (Object.prototype.hasOwnProperty.call(kv, key)) {
        status = 200
        body = kv[key]
      }
    }

    if (!opts.quiet) {
      process.stderr.write(`[consul-stub] ${ req.method } ${ req.url } -> ${ status }\n`)
    }

    res.writeHead(status, { 'content-type': type, 'x-consul-index': '1' })
    res.end(body)
  })

  started.servers.push(server)

  return listen(server)
}

// ---------------------------------------------------------------- redis

function startRedis(opts, port) {
  const logFile = fs.openSync(path.join(opts.work, 'redis.log'), 'a')

  started.redis = spawn('redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', opts.work,
  ], { stdio: ['ignore', logFile, logFile] })

  started.redis.on('exit', (code, signal) => {
    started.redis.exited = true

    if (!stopping) {
      fail(`redis-server exited unexpectedly (code=${ code }, signal=${ signal })`)
    }
  })

  started.redis.on('error', error => {
    started.redis.exited = true
    fail(`could not start redis-server: ${ error.message }`)
  })
}

function redisClient(opts, port) {
  const Redis = require(path.join(opts.modules, 'ioredis'))

  return new Redis({
    host                : '127.0.0.1',
    port,
    lazyConnect         : true,
    maxRetriesPerRequest: 0,
    retryStrategy       : () => null,
    connectTimeout      : 1000,
  })
}

async function waitForRedis(opts, port, deadline) {
  while (Date.now() < deadline) {
    const client = redisClient(opts, port)

    client.on('error', () => {})

    try {
      await client.connect()

      if (await client.ping() === 'PONG') {
        return client
      }
    } catch (e) {
      client.disconnect()
    }

    await sleep(100)
  }

  throw new Error('redis-server did not answer PING in time')
}

// ---------------------------------------------------------------- the official runner

function runnerEnv(opts, consulPort) {
  const env = {}

  // Start from a clean slate: no config inherited from the caller's environment.
  const dropped = /^(BL_|APIURL$|APIHOST$|APIPROTOCOL$|APIPORT$|APIURI$|REPO_PATH$|PUBLIC_|FILE_DOWNLOAD_URL$|COMPRESSION_|NODE_ENV$|NODE_OPTIONS$)/

  for (const [k, v] of Object.entries(process.env)) {
    if (!dropped.test(k)) env[k] = v
  }

  if (consulPort) {
    env.BL_CONSUL_HOST = '127.0.0.1'
    env.BL_CONSUL_PORT = String(consulPort)
  } else if (opts.compression) {
    env.COMPRESSION_PROD = 'true' // any non-empty string is truthy; leave it unset for "off"
  }

  return env
}

function startRunner(opts, { redisPort, apiUrl, repoPath, consulPort }, onLine) {
  const bin = path.join(opts.modules, 'backendless-coderunner', 'bin', 'coderunner')
  const args = [bin, 'pro']

  if (!consulPort) {
    args.push(
      '--repo-path', repoPath,
      '--msg-broker-host', '127.0.0.1',
      '--msg-broker-port', String(redisPort),
      '--api-server', apiUrl,
    )

    if (opts.cache) {
      args.push('--cache-limit', String(CACHE_LIMIT))
    }
  }

  if (opts.verbose) {
    args.push('--verbose')
  }

  log(`starting: node ${ args.map(a => path.isAbsolute(a) ? path.relative(process.cwd(), a) || a : a).join(' ') }`)

  runnerLog = fs.openSync(path.join(opts.work, 'runner.log'), 'a')

  const child = started.runner = spawn(process.execPath, args, {
    cwd     : opts.work,
    env     : runnerEnv(opts, consulPort),
    stdio   : ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: the master and its cluster workers are stopped together
  })

  const handle = stream => stream.on('data', lineSplitter(line => {
    fs.writeSync(runnerLog, line + '\n')

    if (!opts.quiet) {
      process.stderr.write(`[runner] ${ line }\n`)
    }

    onLine(line)
  }))

  handle(child.stdout)
  handle(child.stderr)

  child.on('exit', (code, signal) => {
    child.exited = true

    if (!stopping) {
      fail(`the official runner exited unexpectedly (code=${ code }, signal=${ signal })`)
    }
  })

  child.on('error', error => {
    child.exited = true
    fail(`could not start the official runner: ${ error.message }`)
  })

  return child
}

async function waitForRunner(client, state, deadline) {
  while (Date.now() < deadline) {
    const list = await client.client('LIST')
    const blpops = String(list).split('\n').filter(line => / cmd=blpop( |$)/.test(line)).length

    if (blpops >= 1 && state.workersStarted >= WORKERS) {
      return blpops
    }

    await sleep(200)
  }

  throw new Error(`the official runner was not ready in time (workers started: ${ state.workersStarted }/${ WORKERS })`)
}

// ---------------------------------------------------------------- shutdown

function waitExit(child, ms) {
  if (!child || child.exited || child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(true)
  }

  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(false), ms)

    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal)
  } catch (e) {
    // ESRCH: the group is already gone
  }
}

let shutdownPromise = null

function shutdown(code) {
  if (shutdownPromise) {
    return shutdownPromise
  }

  stopping = true

  shutdownPromise = (async () => {
    const { runner, redis } = started

    if (runner && runner.pid) {
      if (!runner.exited) {
        killGroup(runner.pid, 'SIGTERM') // the master stops gracefully; workers ignore SIGTERM

        if (!await waitExit(runner, 10000)) {
          log('the runner did not stop in 10 s, killing it')
        }
      }

      killGroup(runner.pid, 'SIGKILL') // whatever is left of the group (cluster workers)
      await waitExit(runner, 3000)
    }

    if (redis && redis.pid && !redis.exited) {
      redis.kill('SIGTERM')

      if (!await waitExit(redis, 5000)) {
        redis.kill('SIGKILL')
        await waitExit(redis, 2000)
      }
    }

    await Promise.all(started.servers.map(s => new Promise(resolve => {
      s.close(() => resolve())

      if (s.closeAllConnections) s.closeAllConnections()
    })))

    log(`stopped (exit ${ code })`)
    process.exit(code)
  })()

  return shutdownPromise
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs()
  const deadline = Date.now() + opts.readyTimeout * 1000

  process.on('SIGTERM', () => shutdown(0))
  process.on('SIGINT', () => shutdown(0))

  const pkgFile = path.join(opts.modules, 'backendless-coderunner', 'package.json')

  if (!fs.existsSync(pkgFile)) {
    throw new Error(`backendless-coderunner is not installed in ${ opts.modules }`)
  }

  const version = JSON.parse(fs.readFileSync(pkgFile, 'utf8')).version

  if (version !== EXPECTED_VERSION) {
    throw new Error(`backendless-coderunner ${ version } found, ${ EXPECTED_VERSION } expected`)
  }

  // 1. repo layout + model.json (built with the official model builder)
  fs.mkdirSync(opts.work, { recursive: true })

  for (const f of ['runner.log', 'redis.log', 'api-stub.jsonl']) {
    fs.writeFileSync(path.join(opts.work, f), '')
  }

  const repoPath = path.join(opts.work, 'repo')
  const codePath = path.join(repoPath, APP_ID.toLowerCase(), RELATIVE_PATH)

  fs.rmSync(repoPath, { recursive: true, force: true })
  copyDir(path.join(__dirname, 'app'), codePath)

  const build = spawnSync(process.execPath, [
    path.join(__dirname, 'build_model.js'), '--modules', opts.modules, codePath, path.join(codePath, 'model.json'),
  ], { stdio: ['ignore', opts.quiet ? 'ignore' : 2, 2], timeout: 30000 })

  if (build.status !== 0) {
    throw new Error(`build_model.js failed (status ${ build.status }${ build.error ? ', ' + build.error.message : '' })`)
  }

  // 2. ports, redis, stand-ins
  const [redisPort] = await freePorts(1)

  startRedis(opts, redisPort)

  const client = await waitForRedis(opts, redisPort, deadline)
  const apiPort = await startApiStub(opts)
  const apiUrl = `http://127.0.0.1:${ apiPort }`
  let consulPort = null

  const kv = {
    // The service subtree must not be empty: the runner retries a 404 on it every 5 s forever.
    'config/coderunner/js/workers/concurrent'  : String(WORKERS),
    'config/coderunner/js/workers/minIdle'     : String(WORKERS),
    'config/redis/bl/production/host'          : '127.0.0.1',
    'config/redis/bl/production/port'          : String(redisPort),
    'config/server/httpAddress'                : apiUrl,
    'config/repository/location'               : repoPath,
    'config/coderunner/compression/prod'       : opts.compression ? 'true' : 'false',
  }

  if (opts.cache) {
    kv['config/coderunner/js/workers/cache/limit'] = String(CACHE_LIMIT)
  }

  if (opts.consul) {
    consulPort = await startConsulStub(opts, kv)
  }

  // 3. the official runner
  const state = { workersStarted: 0 }

  startRunner(opts, { redisPort, apiUrl, repoPath, consulPort }, line => {
    if (/\] Worker started in /.test(line)) state.workersStarted++
  })

  const blpops = await waitForRunner(client, state, deadline)

  client.disconnect()

  process.stdout.write(JSON.stringify({
    ready        : true,
    redisPort,
    appId        : APP_ID,
    apiKey       : API_KEY,
    apiUrl,
    relativePath : RELATIVE_PATH,
    repoPath,
    codePath,
    consulUrl    : consulPort ? `http://127.0.0.1:${ consulPort }` : null,
    compression  : opts.compression,
    workerCache  : opts.cache ? CACHE_LIMIT : null,
    workers      : WORKERS,
    blpopClients : blpops,
    runnerPid    : started.runner.pid,
    runnerVersion: version,
  }) + '\n')

  // 4. run until stdin closes (or a signal arrives)
  process.stdin.on('data', () => {})
  process.stdin.on('end', () => shutdown(0))
  process.stdin.on('close', () => shutdown(0))
  process.stdin.on('error', () => shutdown(0))
  process.stdin.resume()
}

main().catch(error => fail(error.message || String(error)))
