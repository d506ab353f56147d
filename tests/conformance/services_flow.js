// Drives the official Backendless JS SDK (npm `backendless`, v8) against
// `coderunner dev` (the emulator with the example app's runner): API
// services and custom events. Usage: node services_flow.js <emulatorUrl> <nodeModulesDir>
// Prints one line `CONFORMANCE_RESULT <json>` with every step's outcome; the
// Rust test (tests/conformance/main.rs) asserts on it step by step.
'use strict'

const { serverURL, modulesDir, Backendless, steps, facts, describe, step, expectError, check, run } =
  require('./harness').start('services_flow.js')

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

run(main)
