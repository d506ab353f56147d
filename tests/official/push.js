'use strict'

// Pushes the cases of cases.json to a runner's Redis the way the Backendless server does and
// collects every reply.
//
//   node push.js --modules <node_modules> --redis-port N --cases cases.json --api-url URL
//                [--compression] [--parallel] [--only name,name] [--queue NAME] [--grace ms]
//
// For each case: SUBSCRIBE <responseChannelId>, RPUSH CODE_RUNNER_DRIVER <task>, and collect
// every message published on the channel within (task.timeout + grace, grace = 3000 ms by default).
// The task is prepared like this:
//   - "{apiUrl}" in initAppData.url is replaced with --api-url;
//   - "timestamp": 0 is replaced with Date.now() (any other value is kept: the stale case);
//   - a plain-JSON "arguments" array is sent as the UTF-8 bytes of its JSON text
//     (Buffer.from(JSON.stringify(args)).toJSON().data), as the server does;
//   - with --compression the JSON text of the task is framed: 0x00 + UTF-8 below 8192 bytes,
//     else 0x01 + 4-byte big-endian length + zlib deflate (level 7).
// Replies are unframed (with --compression), parsed, and their byte "arguments" decoded back to
// JSON. Prints ONE JSON line:
//   {"results":{"<name>":{"count":N,"replies":[<decoded>...],"raw":["<reply text>"...],
//                "argsText":["<UTF-8 text of the arguments bytes>"|null...],"sizes":[<bytes on the wire>...],
//                "frames":[<first byte>|null...],"identical":true|false}}}
// "raw" is the exact text that was PUBLISHed (after unframing); "" is an empty message.
// "identical" says whether all copies were byte-equal on the wire.
// Cases run one after another unless --parallel (all subscribed first, then all pushed).

const path = require('path')
const fs = require('fs')
const zlib = require('zlib')

const TASKS_QUEUE = 'CODE_RUNNER_DRIVER'
const THRESHOLD = 8192

function parseArgs() {
  const argv = process.argv.slice(2)
  const opts = { grace: 3000, queue: TASKS_QUEUE, compression: false, parallel: false, only: null }

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]

    if (a === '--modules') opts.modules = argv[++i]
    else if (a === '--redis-port') opts.redisPort = Number(argv[++i])
    else if (a === '--redis-host') opts.redisHost = argv[++i]
    else if (a === '--cases') opts.cases = argv[++i]
    else if (a === '--api-url') opts.apiUrl = argv[++i]
    else if (a === '--compression') opts.compression = true
    else if (a === '--parallel') opts.parallel = true
    else if (a === '--only') opts.only = argv[++i].split(',')
    else if (a === '--queue') opts.queue = argv[++i]
    else if (a === '--grace') opts.grace = Number(argv[++i])
    else throw new Error(`unknown argument: ${ a }`)
  }

  if (!opts.modules || !opts.redisPort || !opts.cases || !opts.apiUrl) {
    throw new Error('usage: node push.js --modules <node_modules> --redis-port N --cases cases.json ' +
      '--api-url URL [--compression] [--parallel] [--only a,b] [--queue NAME] [--grace ms]')
  }

  if (opts.redisPort === 6379 && !process.env.PUSH_ALLOW_6379) {
    throw new Error('refusing to push to port 6379 (the shared Redis); use the private one from start.js')
  }

  return opts
}

function frame(text) {
  const data = Buffer.from(text, 'utf8')

  if (data.length < THRESHOLD) {
    return Buffer.concat([Buffer.from([0x00]), data])
  }

  const header = Buffer.alloc(5)

  header[0] = 0x01
  header.writeUInt32BE(data.length, 1)

  return Buffer.concat([header, zlib.deflateSync(data, { level: 7 })])
}

function unframe(buf) {
  if (buf.length === 0) {
    return { frame: null, text: '' }
  }

  if (buf[0] === 0x01) {
    const size = buf.readUInt32BE(1)
    const text = zlib.inflateSync(buf.subarray(5)).toString('utf8')

    if (Buffer.byteLength(text) !== size) {
      throw new Error(`frame length ${ size } != inflated length ${ Buffer.byteLength(text) }`)
    }

    return { frame: 1, text }
  }

  if (buf[0] === 0x00) {
    return { frame: 0, text: buf.subarray(1).toString('utf8') }
  }

  throw new Error(`unknown frame byte 0x${ buf[0].toString(16) }`)
}

function isByteArray(value) {
  return Array.isArray(value) && value.every(n => Number.isInteger(n) && n >= 0 && n <= 255)
}

function argumentsText(text) {
  try {
    const reply = JSON.parse(text)

    return reply && isByteArray(reply.arguments) ? Buffer.from(reply.arguments).toString('utf8') : null
  } catch (e) {
    return null
  }
}

function decodeReply(text) {
  if (text === '') {
    return ''
  }

  let reply

  try {
    reply = JSON.parse(text)
  } catch (e) {
    return { unparseable: text }
  }

  if (reply && isByteArray(reply.arguments)) {
    const argsText = Buffer.from(reply.arguments).toString('utf8')

    try {
      reply.arguments = reply.arguments.length ? JSON.parse(argsText) : []
    } catch (e) {
      reply.arguments = { undecodable: argsText }
    }
  }

  return reply
}

function prepareTask(task, opts) {
  const t = JSON.parse(JSON.stringify(task))

  if (t.initAppData && typeof t.initAppData.url === 'string') {
    t.initAppData.url = t.initAppData.url.replace('{apiUrl}', opts.apiUrl)
  }

  if (t.timestamp === 0) {
    t.timestamp = Date.now()
  }

  if (Array.isArray(t.arguments)) {
    t.arguments = Buffer.from(JSON.stringify(t.arguments), 'utf8').toJSON().data
  }

  const text = JSON.stringify(t)

  return opts.compression ? frame(text) : text
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

async function main() {
  const opts = parseArgs()
  const Redis = require(path.join(path.resolve(opts.modules), 'ioredis'))
  let cases = JSON.parse(fs.readFileSync(opts.cases, 'utf8'))

  if (!Array.isArray(cases)) {
    cases = cases.cases
  }

  if (opts.only) {
    cases = cases.filter(c => opts.only.includes(c.name))
  }

  const connection = {
    host                : opts.redisHost || '127.0.0.1',
    port                : opts.redisPort,
    maxRetriesPerRequest: 1,
    connectTimeout      : 2000,
  }

  const sub = new Redis(connection)
  const pub = new Redis(connection)
  const received = {}
  const channelToCase = {}

  for (const c of cases) {
    received[c.name] = []
    channelToCase[c.task.responseChannelId] = c.name
  }

  sub.on('messageBuffer', (channel, message) => {
    const name = channelToCase[channel.toString('utf8')]

    if (name) {
      received[name].push(Buffer.from(message))
    }
  })

  const windowOf = c => (c.task.timeout > 0 ? c.task.timeout : 0) + opts.grace

  async function push(c) {
    await pub.rpush(opts.queue, prepareTask(c.task, opts))
  }

  if (opts.parallel) {
    await sub.subscribe(...cases.map(c => c.task.responseChannelId))

    const started = Date.now()

    for (const c of cases) {
      c.pushedAt = Date.now()
      await push(c)
    }

    const end = Math.max(...cases.map(c => c.pushedAt + windowOf(c)), started)

    await sleep(Math.max(0, end - Date.now()))
  } else {
    for (const c of cases) {
      await sub.subscribe(c.task.responseChannelId)
      await push(c)
      await sleep(windowOf(c))
      await sub.unsubscribe(c.task.responseChannelId)
    }
  }

  const results = {}

  for (const c of cases) {
    const messages = received[c.name]
    const unframed = messages.map(m => {
      if (opts.compression) {
        return unframe(m)
      }

      return { frame: null, text: m.toString('utf8') }
    })

    results[c.name] = {
      count    : messages.length,
      replies  : unframed.map(u => decodeReply(u.text)),
      raw      : unframed.map(u => u.text),
      argsText : unframed.map(u => argumentsText(u.text)),
      sizes    : messages.map(m => m.length),
      frames   : unframed.map(u => u.frame),
      identical: messages.every(m => m.equals(messages[0])),
    }
  }

  sub.disconnect()
  pub.disconnect()

  process.stdout.write(JSON.stringify({ results }) + '\n')
}

main().catch(error => {
  process.stderr.write(`push.js: ${ error.stack || error }\n`)
  process.exit(1)
})
