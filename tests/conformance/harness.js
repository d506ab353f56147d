// The part every conformance flow shares: its arguments (the emulator's URL
// and the node_modules folder), a guard that refuses (and reports) any
// request to a host other than 127.0.0.1, the official SDK, the steps with
// their outcomes, and the one `CONFORMANCE_RESULT <json>` line the Rust
// tests read. Usage in a flow:
//   const { Backendless, step, check, facts, run } = require('./harness').start('x_flow.js')
//   run(async () => { await step('name', async () => ...) })
'use strict'

const path = require('path')

function start(script) {
  const [serverURL, modulesDir] = process.argv.slice(2)
  if (!serverURL || !modulesDir) {
    console.error(`usage: node ${script} <emulatorUrl> <nodeModulesDir>`)
    process.exit(2)
  }
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(serverURL)) {
    console.error(`refusing to talk to anything but 127.0.0.1: ${serverURL}`)
    process.exit(2)
  }

  const steps = []
  const facts = { foreignHosts: [] }

  // The SDK talks HTTP through Node's http/https modules: refuse (and report)
  // any request to a host other than 127.0.0.1.
  for (const mod of [require('http'), require('https')]) {
    for (const fn of ['request', 'get']) {
      const original = mod[fn]
      mod[fn] = function guarded(target, ...rest) {
        const url = typeof target === 'string' || target instanceof URL ? new URL(target) : target || {}
        const host = url.hostname || (url.host || '').replace(/:\d+$/, '') || 'localhost'
        if (host !== '127.0.0.1') {
          facts.foreignHosts.push(host)
          throw new Error(`conformance: blocked a request to ${host}`)
        }
        return original.call(this, target, ...rest)
      }
    }
  }

  const Backendless = require(path.join(modulesDir, 'backendless'))

  function describe(error) {
    if (error && typeof error === 'object') {
      return { message: String(error.message), code: error.code, status: error.status }
    }
    return { message: String(error) }
  }

  async function step(name, fn) {
    try {
      const value = await fn()
      steps.push({ name, ok: true, value: value === undefined ? null : value })
    } catch (error) {
      steps.push({ name, ok: false, error: describe(error) })
    }
  }

  // Runs `fn`, which must reject with Backendless error `code`.
  async function expectError(code, fn) {
    let result
    try {
      result = await fn()
    } catch (error) {
      if (error && error.code === code) {
        return { code: error.code, status: error.status, message: error.message }
      }
      throw new Error(`expected error ${code}, got ${JSON.stringify(describe(error))}`)
    }
    throw new Error(`expected error ${code}, got success ${JSON.stringify(result)}`)
  }

  function check(condition, message) {
    if (!condition) {
      throw new Error(message)
    }
  }

  // Runs the flow, then prints its result and exits.
  function run(main) {
    main()
      .catch(error => steps.push({ name: 'script', ok: false, error: describe(error) }))
      .finally(() => {
        const sdkVersion = require(path.join(modulesDir, 'backendless', 'package.json')).version
        process.stdout.write(`CONFORMANCE_RESULT ${JSON.stringify({ sdkVersion, facts, steps })}\n`)
        process.exit(0)
      })
  }

  return { serverURL, modulesDir, Backendless, steps, facts, describe, step, expectError, check, run }
}

module.exports = { start }
