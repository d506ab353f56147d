// Drives the official Backendless JS SDK (npm `backendless`, v8) against
// `coderunner dev` (the emulator with the example app's runner): API
// services and custom events. Usage: node services_flow.js <emulatorUrl> <nodeModulesDir>
// Prints one line `CONFORMANCE_RESULT <json>` with every step's outcome; the
// Rust test (tests/conformance/main.rs) asserts on it step by step.
'use strict'

const path = require('path')

const [serverURL, modulesDir] = process.argv.slice(2)
if (!serverURL || !modulesDir) {
  console.error('usage: node services_flow.js <emulatorUrl> <nodeModulesDir>')
  process.exit(2)
}
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(serverURL)) {
  console.error(`refusing to talk to anything but 127.0.0.1: ${serverURL}`)
  process.exit(2)
}

const steps = []
const facts = { foreignHosts: [] }

// Refuse (and report) any request to a host other than 127.0.0.1.
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

function same(actual, expected, what) {
  check(JSON.stringify(actual) === JSON.stringify(expected),
    `${what}: ${JSON.stringify(actual)} instead of ${JSON.stringify(expected)}`)
}

async function main() {
  await step('initApp', async () => {
    Backendless.initApp({ serverURL, appId: 'dev-app', apiKey: 'dev-js-key' })
    return null
  })

  await step('anonymousServiceRefused', () =>
    expectError(4010, () => Backendless.APIServices.invoke('Posts', 'myPostCount')))

  await step('login', async () => {
    const user = await Backendless.UserService.login('alice@example.com', 'alice-pass')
    facts.userId = user.objectId
    return user.objectId
  })

  await step('savePost', async () => {
    const saved = await Backendless.Data.of('Post').save({ title: '  from the JS SDK  ' })
    check(saved.ownerId === facts.userId, `ownerId ${saved.ownerId}`)
    return saved.title
  })

  await step('apiServicesInvoke', async () => {
    const count = await Backendless.APIServices.invoke('Posts', 'myPostCount')
    same(count, { count: 1, label: 'posts' }, 'myPostCount')
    return count
  })

  await step('customServicesInvoke', async () => {
    const count = await Backendless.CustomServices.invoke('Posts', 'myPostCount', {})
    same(count, { count: 1, label: 'posts' }, 'myPostCount')
    return count
  })

  await step('apiServicesInvokeAsync', async () => {
    await Backendless.APIServices.invoke('Posts', 'myPostCount', Backendless.BL.ExecutionTypes.ASYNC)
    return null
  })

  await step('unknownService', () =>
    expectError(14001, () => Backendless.APIServices.invoke('NoSuchService', 'x')))

  await step('unknownMethod', () =>
    expectError(14002, () => Backendless.APIServices.invoke('Posts', 'noSuchMethod')))

  await step('eventsDispatch', async () => {
    const stats = await Backendless.Events.dispatch('postStats', {})
    same(stats, { mine: 1 }, 'postStats')
    return stats
  })

  await step('eventsDispatchAsync', async () => {
    await Backendless.Events.dispatch('postStats', {}, Backendless.BL.ExecutionTypes.ASYNC)
    return null
  })

  await step('logout', async () => {
    await Backendless.UserService.logout()
    return null
  })

  await step('anonymousEventRefused', () =>
    expectError(4010, () => Backendless.Events.dispatch('postStats', {})))
}

main()
  .catch(error => steps.push({ name: 'script', ok: false, error: describe(error) }))
  .finally(() => {
    process.stdout.write(`CONFORMANCE_RESULT ${JSON.stringify({ facts, steps })}\n`)
    process.exit(0)
  })
