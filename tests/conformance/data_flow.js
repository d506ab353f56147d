// Drives the official Backendless JS SDK (npm `backendless`, v8) through
// relations and transactions against the local emulator (the dev app, as
// alice). Usage: node data_flow.js <emulatorUrl> <nodeModulesDir>
// Prints one line `CONFORMANCE_RESULT <json>` with every step's outcome; the
// Rust test (tests/conformance/main.rs, `js_sdk_v8_relations_and_transactions`)
// asserts on it step by step and on what the emulator stored.
'use strict'

const { serverURL, modulesDir, Backendless, steps, facts, describe, step, expectError, check, run } =
  require('./harness').start('data_flow.js')

const ids = rows => rows.map(r => r.objectId)

async function main() {
  const tag = `${process.pid}-${Date.now()}`
  facts.tag = tag
  const posts = Backendless.Data.of('Post')
  const latest = Backendless.Data.of('Latest_post')

  await step('login', async () => {
    Backendless.initApp({ serverURL, appId: 'dev-app', apiKey: 'dev-js-key' })
    const user = await Backendless.UserService.login('alice@example.com', 'alice-pass')
    check(user && user.objectId, `login ${JSON.stringify(user)}`)
    facts.userId = user.objectId
    return user.objectId
  })

  const made = {}
  await step('createRows', async () => {
    made.post = await posts.save({ title: `rel-main ${tag}` })
    made.others = []
    for (const n of [1, 2, 3]) {
      made.others.push(await posts.save({ title: `rel-other-${n} ${tag}` }))
    }
    made.latest = await latest.save({ postId: made.post.objectId, title: made.post.title })
    facts.latestId = made.latest.objectId
    facts.postId = made.post.objectId
    return null
  })

  await step('setRelation', async () => {
    const n = await latest.setRelation(made.latest, 'post', [made.post])
    check(n === 1, `setRelation returned ${JSON.stringify(n)}`)
    return n
  })

  await step('loadRelations', async () => {
    const query = Backendless.LoadRelationsQueryBuilder.create().setRelationName('post')
    const related = await latest.loadRelations(made.latest.objectId, query)
    check(related.length === 1 && related[0].objectId === made.post.objectId,
      `loadRelations ${JSON.stringify(related)}`)
    return ids(related)
  })

  await step('findWithRelated', async () => {
    const query = Backendless.DataQueryBuilder.create()
      .setWhereClause(`objectId = '${made.latest.objectId}'`)
      .setRelated(['post'])
    const rows = await latest.find(query)
    check(rows.length === 1 && rows[0].post && rows[0].post.objectId === made.post.objectId,
      `find with related ${JSON.stringify(rows)}`)
    const byId = await latest.findById(made.latest.objectId,
      Backendless.DataQueryBuilder.create().setRelationsDepth(1))
    check(byId.post && byId.post.title === made.post.title, `findById depth 1 ${JSON.stringify(byId)}`)
    return rows[0].post.objectId
  })

  await step('addRelationDeclaresColumn', async () => {
    // A column declared on first use (name:Table:n), as the REST API allows.
    const n = await posts.addRelation(made.post, 'related:Post:n', [made.others[0], made.others[1].objectId])
    check(n === 2, `addRelation returned ${JSON.stringify(n)}`)
    const byWhere = await posts.addRelation(made.post, 'related', `title = 'rel-other-3 ${tag}'`)
    check(byWhere === 1, `addRelation by where returned ${JSON.stringify(byWhere)}`)
    return n + byWhere
  })

  await step('relationPaging', async () => {
    const first = await posts.loadRelations(made.post.objectId,
      Backendless.LoadRelationsQueryBuilder.create().setRelationName('related').setPageSize(2))
    const rest = await posts.loadRelations(made.post.objectId,
      Backendless.LoadRelationsQueryBuilder.create().setRelationName('related').setPageSize(2).setOffset(2))
    check(JSON.stringify(ids(first.concat(rest))) === JSON.stringify(ids(made.others)),
      `paging ${JSON.stringify(ids(first))} + ${JSON.stringify(ids(rest))}`)
    return [first.length, rest.length]
  })

  await step('deleteRelation', async () => {
    const n = await posts.deleteRelation(made.post, 'related', [made.others[1]])
    check(n === 1, `deleteRelation returned ${JSON.stringify(n)}`)
    const left = await posts.loadRelations(made.post.objectId,
      Backendless.LoadRelationsQueryBuilder.create().setRelationName('related'))
    check(JSON.stringify(ids(left)) === JSON.stringify([made.others[0].objectId, made.others[2].objectId]),
      `after deleteRelation ${JSON.stringify(ids(left))}`)
    return ids(left).length
  })

  await step('unitOfWork', async () => {
    const uow = new Backendless.UnitOfWork()
    const post = uow.create('Post', { title: `tx-post ${tag}` })
    const row = uow.create('Latest_post', { postId: post.resolveTo('objectId'), title: `tx-post ${tag}` })
    uow.setRelation(row, 'post', [post])
    const result = await uow.execute()
    check(result.isSuccess(), `transaction failed: ${JSON.stringify(result.getError())}`)
    const results = result.getResults()
    const savedPost = results[post.getOpResultId()].result
    const savedRow = results[row.getOpResultId()].result
    check(savedRow.postId === savedPost.objectId, `op reference: ${JSON.stringify(results)}`)
    check(post.getResult().objectId === savedPost.objectId, 'OpResult.getResult()')
    facts.txLatestId = savedRow.objectId
    facts.txPostId = savedPost.objectId
    return Object.keys(results)
  })

  await step('unitOfWorkFailure', async () => {
    const uow = new Backendless.UnitOfWork()
    uow.create('Post', { title: `tx-fail ${tag}` })
    uow.create('Latest_post', { postId: 'none', title: `tx-fail ${tag}` })
    // alice may not create Audit_log rows: 1011, and nothing is written.
    const audit = uow.create('Audit_log', { action: `tx-fail ${tag}` })
    const result = await uow.execute()
    check(!result.isSuccess(), 'the transaction succeeded')
    const error = result.getError()
    check(error.code === 1011, `error code ${error.code}`)
    check(error.operation === audit, `failed operation ${error.operation && error.operation.getOpResultId()}`)
    check(audit.getError() === error, 'the OpResult carries the error')
    const count = await posts.getObjectCount(`title = 'tx-fail ${tag}'`)
    check(count === 0, `${count} posts written by a failed transaction`)
    return { code: error.code, opResultId: audit.getOpResultId() }
  })
}

run(main)
