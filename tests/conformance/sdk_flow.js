// Drives the official Backendless JS SDK (npm `backendless`, v8) against the
// local emulator. Usage: node sdk_flow.js <emulatorUrl> <nodeModulesDir>
// Prints one line `CONFORMANCE_RESULT <json>` with every step's outcome; the
// Rust test (tests/conformance/main.rs) asserts on it step by step.
'use strict'

const { serverURL, modulesDir, Backendless, steps, facts, describe, step, expectError, check, run } =
  require('./harness').start('sdk_flow.js')

async function main() {
  const email = `sdk-${Date.now()}-${process.pid}@example.com`
  const password = 'sdk-pass-1'
  const title = `hello from the JS SDK ${process.pid}-${Date.now()}`
  facts.email = email

  await step('initApp', async () => {
    Backendless.initApp({ serverURL, appId: 'dev-app', apiKey: 'dev-js-key' })
    check(Backendless.appPath === `${serverURL}/dev-app/dev-js-key`, `appPath ${Backendless.appPath}`)
    const info = await Backendless.appInfoPromise()
    check(info && typeof info === 'object', `app info ${JSON.stringify(info)}`)
    return info
  })

  await step('anonymousFind', async () => {
    const posts = await Backendless.Data.of('Post').find(Backendless.DataQueryBuilder.create().setPageSize(5))
    check(Array.isArray(posts), `find returned ${JSON.stringify(posts)}`)
    return posts.length
  })

  await step('anonymousCreateDenied', () =>
    expectError(1011, () => Backendless.Data.of('Post').save({ title: 'anonymous' })))

  await step('register', async () => {
    const user = new Backendless.User()
    user.email = email
    user.password = password
    user.name = 'SDK user'
    const saved = await Backendless.UserService.register(user)
    check(saved && saved.objectId, `no objectId in ${JSON.stringify(saved)}`)
    check(saved.email === email, `email ${saved.email}`)
    check(saved.password === undefined, 'password returned')
    facts.userId = saved.objectId
    return { objectId: saved.objectId, email: saved.email }
  })

  await step('registerDuplicate', () =>
    expectError(3033, () => {
      const user = new Backendless.User()
      user.email = email
      user.password = password
      return Backendless.UserService.register(user)
    }))

  await step('loginWrongPassword', () =>
    expectError(3003, () => Backendless.UserService.login(email, 'wrong-pass')))

  await step('login', async () => {
    const user = await Backendless.UserService.login(email, password)
    check(user && user.objectId === facts.userId, `login user ${JSON.stringify(user)}`)
    const token = Backendless.UserService.getCurrentUserToken()
    check(typeof token === 'string' && token.length > 0, `token ${token}`)
    check(user['user-token'] === token, 'user-token on the user object')
    facts.token = token
    return { objectId: user.objectId }
  })

  await step('currentUser', async () => {
    const user = await Backendless.UserService.getCurrentUser()
    check(user && user.email === email, `current user ${JSON.stringify(user)}`)
    return user.email
  })

  await step('isValidLogin', async () => {
    const valid = await Backendless.UserService.isValidLogin()
    check(valid === true, `isValidLogin ${JSON.stringify(valid)}`)
    return valid
  })

  await step('savePost', async () => {
    const saved = await Backendless.Data.of('Post').save({ title, likes: 3 })
    check(saved && saved.objectId, `saved ${JSON.stringify(saved)}`)
    check(saved.title === title && saved.likes === 3, `fields ${JSON.stringify(saved)}`)
    check(saved.ownerId === facts.userId, `ownerId ${saved.ownerId} != ${facts.userId}`)
    check(typeof saved.created === 'number', `created ${saved.created}`)
    facts.postId = saved.objectId
    return { objectId: saved.objectId, ownerId: saved.ownerId }
  })

  await step('updatePost', async () => {
    const saved = await Backendless.Data.of('Post').save({ objectId: facts.postId, likes: 4 })
    check(saved.objectId === facts.postId, `objectId ${saved.objectId}`)
    check(saved.likes === 4, `likes ${saved.likes}`)
    return { likes: saved.likes }
  })

  await step('findPost', async () => {
    const query = Backendless.DataQueryBuilder.create()
      .setWhereClause(`title = '${title.replace(/'/g, "''")}' and likes >= 4`)
      .setSortBy(['created desc'])
      .setPageSize(10)
    const found = await Backendless.Data.of('Post').find(query)
    check(Array.isArray(found) && found.length === 1, `found ${JSON.stringify(found)}`)
    check(found[0].objectId === facts.postId, `found ${found[0].objectId}`)
    check(found[0].likes === 4, `likes ${found[0].likes}`)
    return found.map(o => o.objectId)
  })

  await step('findById', async () => {
    const post = await Backendless.Data.of('Post').findById(facts.postId)
    check(post && post.title === title, `findById ${JSON.stringify(post)}`)
    return post.objectId
  })

  await step('count', async () => {
    const query = Backendless.DataQueryBuilder.create().setWhereClause(`title = '${title}'`)
    const count = await Backendless.Data.of('Post').getObjectCount(query)
    check(count === 1, `count ${JSON.stringify(count)}`)
    return count
  })

  await step('updateUser', async () => {
    const user = await Backendless.UserService.getCurrentUser()
    user.name = 'SDK user renamed'
    const saved = await Backendless.UserService.update(user)
    check(saved && saved.objectId === facts.userId && saved.name === 'SDK user renamed', `update ${JSON.stringify(saved)}`)
    check(saved.password === undefined, 'password returned')
    return saved.name
  })

  await step('userRoles', async () => {
    const roles = await Backendless.UserService.getUserRoles()
    check(Array.isArray(roles) && roles.includes('AuthenticatedUser'), `roles ${JSON.stringify(roles)}`)
    return roles
  })

  await step('findFirstAndPaging', async () => {
    const first = await Backendless.Data.of('Post').findFirst()
    check(first && first.objectId, `findFirst ${JSON.stringify(first)}`)
    const query = Backendless.DataQueryBuilder.create()
      .setWhereClause(`ownerId = '${facts.userId}'`)
      .setProperties(['title', 'likes'])
      .setPageSize(1).setOffset(0)
    const page = await Backendless.Data.of('Post').find(query)
    check(page.length === 1 && page[0].title === title && page[0].likes === 4, `page ${JSON.stringify(page)}`)
    return page.length
  })

  await step('bulkCreateAndRemove', async () => {
    const ids = await Backendless.Data.of('Post').bulkCreate([{ title: `${title} bulk 1` }, { title: `${title} bulk 2` }])
    check(Array.isArray(ids) && ids.length === 2 && ids.every(id => typeof id === 'string'), `bulkCreate ${JSON.stringify(ids)}`)
    return ids.length
  })

  await step('upsert', async () => {
    const store = Backendless.Data.of('Post')
    const created = await store.save({ title: `${title} upserted`, likes: 1 }, true)
    check(created && created.objectId && created.likes === 1, `upsert create ${JSON.stringify(created)}`)
    const updated = await store.save({ objectId: created.objectId, likes: 2 }, true)
    check(updated.objectId === created.objectId && updated.likes === 2, `upsert update ${JSON.stringify(updated)}`)
    check(updated.title === `${title} upserted`, `upsert kept title ${JSON.stringify(updated)}`)
    facts.upsertedId = created.objectId
    return updated.likes
  })

  await step('bulkUpdate', async () => {
    const count = await Backendless.Data.of('Post').bulkUpdate(`title LIKE '${title} bulk%'`, { likes: 7 })
    check(count === 2, `bulkUpdate ${JSON.stringify(count)}`)
    const found = await Backendless.Data.of('Post').find(
      Backendless.DataQueryBuilder.create().setWhereClause(`likes = 7 and title LIKE '${title}%'`))
    check(found.length === 2, `after bulkUpdate ${JSON.stringify(found)}`)
    return count
  })

  // No role grants `remove` on Post, but the owner policy lets the owner remove.
  await step('removeOwn', async () => {
    const result = await Backendless.Data.of('Post').remove(facts.upsertedId)
    check(result && typeof result.deletionTime === 'number', `remove ${JSON.stringify(result)}`)
    await expectError(1000, () => Backendless.Data.of('Post').findById(facts.upsertedId))
    return null
  })

  await step('findLastAndCountAll', async () => {
    const last = await Backendless.Data.of('Post').findLast(
      Backendless.DataQueryBuilder.create().setWhereClause(`ownerId = '${facts.userId}'`))
    check(last && last.objectId, `findLast ${JSON.stringify(last)}`)
    const all = await Backendless.Data.of('Post').getObjectCount(`ownerId = '${facts.userId}'`)
    check(all === 3, `count ${JSON.stringify(all)}`)
    return all
  })

  await step('bulkUpsert', async () => {
    const ids = await Backendless.Data.of('Post').bulkUpsert([
      { objectId: facts.postId, likes: 5 },
      { title: `${title} bulk upserted` },
    ])
    check(Array.isArray(ids) && ids.length === 2 && ids[0] === facts.postId, `bulkUpsert ${JSON.stringify(ids)}`)
    const post = await Backendless.Data.of('Post').findById(facts.postId)
    check(post.likes === 5 && post.title === title, `after bulkUpsert ${JSON.stringify(post)}`)
    const created = await Backendless.Data.of('Post').findById(ids[1])
    check(created.ownerId === facts.userId, `bulkUpsert owner ${JSON.stringify(created)}`)
    return ids.length
  })

  await step('cacheExpireAtAndCounterList', async () => {
    const key = `sdk-cache-at-${process.pid}`
    await Backendless.Cache.put(key, 42)
    await Backendless.Cache.expireAt(key, new Date(Date.now() + 60000))
    check(await Backendless.Cache.get(key) === 42, 'value after expireAt')
    await Backendless.Counters.incrementAndGet(`sdk-list-${process.pid}-a`)
    const names = await Backendless.Counters.list(`sdk-list-${process.pid}-*`)
    check(Array.isArray(names) && names.length === 1, `counters list ${JSON.stringify(names)}`)
    return names
  })

  await step('counters', async () => {
    const name = `sdk-counter-${process.pid}`
    const a = await Backendless.Counters.incrementAndGet(name)
    const b = await Backendless.Counters.getAndIncrement(name)
    const c = await Backendless.Counters.addAndGet(name, 10)
    const d = await Backendless.Counters.decrementAndGet(name)
    const e = await Backendless.Counters.compareAndSet(name, d, 100)
    const f = await Backendless.Counters.get(name)
    const counter = Backendless.Counters.of(name)
    const g = await counter.incrementAndGet()
    check(await counter.getAndAdd(0) === 101, 'counter.getAndAdd')
    await Backendless.Counters.reset(name)
    const h = await Backendless.Counters.get(name)
    const values = [a, b, c, d, e, f, g, h]
    check(JSON.stringify(values) === JSON.stringify([1, 1, 12, 11, true, 100, 101, 0]), `counter values ${JSON.stringify(values)}`)
    return values
  })

  await step('logging', async () => {
    const logger = Backendless.Logging.getLogger('conformance')
    logger.info('hello from the JS SDK')
    logger.error('an error from the JS SDK')
    await Backendless.Logging.flush()
    return null
  })

  await step('verifyPassword', async () => {
    const right = await Backendless.UserService.verifyPassword(password)
    const wrong = await Backendless.UserService.verifyPassword('not-the-password')
    check(right === true && wrong === false, `verifyPassword ${right} ${wrong}`)
    return [right, wrong]
  })

  await step('usersTable', async () => {
    const users = await Backendless.Data.of('Users').find(
      Backendless.DataQueryBuilder.create().setWhereClause(`email = '${email}'`))
    check(users.length === 1 && users[0].objectId === facts.userId, `users ${JSON.stringify(users)}`)
    check(users[0].password === undefined, 'password returned')
    const saved = await Backendless.Data.of('Users').save({ objectId: facts.userId, nickname: 'sdk' })
    check(saved.nickname === 'sdk' && saved.email === email, `save user ${JSON.stringify(saved)}`)
    const reloaded = await Backendless.UserService.getCurrentUser(true)
    check(reloaded.nickname === 'sdk' && reloaded['user-token'] === facts.token, `reloaded ${JSON.stringify(reloaded)}`)
    return reloaded.nickname
  })

  await step('auditLogDenied', () =>
    expectError(1011, () => Backendless.Data.of('Audit_log').save({ message: 'not an admin' })))

  await step('cachePutGet', async () => {
    const key = `sdk-cache-${process.pid}`
    facts.cacheKey = key
    await Backendless.Cache.put(key, { hello: 'world', n: 1 }, 60)
    const value = await Backendless.Cache.get(key)
    check(value && value.hello === 'world' && value.n === 1, `cache get ${JSON.stringify(value)}`)
    const contains = await Backendless.Cache.contains(key)
    check(contains === true, `contains ${JSON.stringify(contains)}`)
    return value
  })

  await step('cacheExpireIn', async () => {
    const key = facts.cacheKey
    const started = Date.now()
    await Backendless.Cache.expireIn(key, 2)
    const before = await Backendless.Cache.get(key)
    // Only meaningful if the host did not stall for the whole 2 s.
    if (Date.now() - started < 1500) {
      check(before && before.hello === 'world', `right after expireIn ${JSON.stringify(before)}`)
    }
    await new Promise(resolve => setTimeout(resolve, Math.max(0, started + 2300 - Date.now())))
    const after = await Backendless.Cache.get(key)
    check(after === null || after === undefined, `after expiry ${JSON.stringify(after)}`)
    const contains = await Backendless.Cache.contains(key)
    check(contains === false, `contains after expiry ${JSON.stringify(contains)}`)
    return null
  })

  await step('cacheRemove', async () => {
    const key = `${facts.cacheKey}-remove`
    await Backendless.Cache.put(key, 'a string value')
    const value = await Backendless.Cache.get(key)
    check(value === 'a string value', `string value ${JSON.stringify(value)}`)
    await Backendless.Cache.remove(key)
    const contains = await Backendless.Cache.contains(key)
    check(contains === false, `contains after remove ${JSON.stringify(contains)}`)
    return null
  })

  await step('logout', async () => {
    await Backendless.UserService.logout()
    check(!Backendless.UserService.getCurrentUserToken(), 'token kept after logout')
    const valid = await Backendless.UserService.isValidLogin()
    check(valid === false, `isValidLogin after logout ${JSON.stringify(valid)}`)
    return null
  })

  await step('oldTokenInvalid', async () => {
    // Put the old token back (setCurrentUserToken needs a current user):
    // the server must now refuse it.
    Backendless.UserService.setCurrentUser({ objectId: facts.userId, email, 'user-token': facts.token })
    check(Backendless.UserService.getCurrentUserToken() === facts.token, 'old token not restored')
    const valid = await Backendless.UserService.isValidLogin()
    check(valid === false, `old token still valid: ${JSON.stringify(valid)}`)
    const denied = await expectError(3064, () => Backendless.Data.of('Post').save({ title: 'stale token' }))
    Backendless.UserService.setCurrentUser(null)
    return denied
  })

  await step('anonymousCreateDeniedAfterLogout', () =>
    expectError(1011, () => Backendless.Data.of('Post').save({ title: 'anonymous again' })))
}

run(main)
