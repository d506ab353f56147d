// Drives the official Backendless JS SDK (npm `backendless`, v8) against the
// local emulator: a file round trip (saveFile, upload, download by the file
// URL, listing, exists, remove, a private directory), a published message
// and an email. Usage: node files_flow.js <emulatorUrl> <nodeModulesDir>
// Prints one line `CONFORMANCE_RESULT <json>` with every step's outcome; the
// Rust test (tests/conformance/main.rs) asserts on it step by step.
'use strict'

const path = require('path')

const { serverURL, modulesDir, Backendless, steps, facts, describe, step, expectError, check, run } =
  require('./harness').start('files_flow.js')

// GET `url` with Node's http (guarded above): the body as a string.
function download(url) {
  return new Promise((resolve, reject) => {
    require('http').get(url, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    }).on('error', reject)
  })
}

async function main() {
  const fs = require('fs')
  const os = require('os')
  const dir = `/conformance-${process.pid}`
  facts.dir = dir.slice(1)

  await step('initApp', async () => {
    Backendless.initApp({ serverURL, appId: 'dev-app', apiKey: 'dev-js-key' })
    await Backendless.appInfoPromise()
    return null
  })

  await step('login', async () => {
    const user = await Backendless.UserService.login('alice@example.com', 'alice-pass', true)
    facts.userId = user.objectId
    return user.objectId
  })

  await step('saveFile', async () => {
    const url = await Backendless.Files.saveFile(dir, 'note.txt', Buffer.from('saved by the JS SDK'), true)
    check(typeof url === 'string' && url.endsWith(`${dir}/note.txt`), `saveFile returned ${JSON.stringify(url)}`)
    facts.savedUrl = url
    return null
  })

  await step('upload', async () => {
    const local = path.join(os.tmpdir(), `upload-${process.pid}.txt`)
    fs.writeFileSync(local, 'uploaded by the JS SDK')
    try {
      const result = await Backendless.Files.upload(fs.createReadStream(local), dir, true)
      check(result && typeof result.fileURL === 'string', `upload returned ${JSON.stringify(result)}`)
      check(result.fileURL.endsWith(`${dir}/${path.basename(local)}`), `fileURL ${result.fileURL}`)
      facts.uploadedUrl = result.fileURL
      facts.uploadedName = path.basename(local)
    } finally {
      fs.unlinkSync(local)
    }
    return null
  })

  await step('downloadByUrl', async () => {
    const saved = await download(facts.savedUrl)
    check(saved.status === 200 && saved.body === 'saved by the JS SDK', `saved file: ${JSON.stringify(saved)}`)
    const uploaded = await download(facts.uploadedUrl)
    check(uploaded.status === 200 && uploaded.body === 'uploaded by the JS SDK', `uploaded file: ${JSON.stringify(uploaded)}`)
    return null
  })

  await step('listing', async () => {
    const all = await Backendless.Files.listing(dir)
    const names = all.map(f => f.name).sort()
    check(JSON.stringify(names) === JSON.stringify(['note.txt', facts.uploadedName].sort()), `listing ${JSON.stringify(all)}`)
    const notes = await Backendless.Files.listing(dir, 'note*', false, 10, 0)
    check(notes.length === 1 && notes[0].name === 'note.txt', `pattern listing ${JSON.stringify(notes)}`)
    check(typeof notes[0].publicUrl === 'string' && typeof notes[0].createdOn === 'number', `entry ${JSON.stringify(notes[0])}`)
    return names
  })

  await step('exists', async () => {
    const yes = await Backendless.Files.exists(`${dir}/note.txt`)
    const no = await Backendless.Files.exists(`${dir}/missing.txt`)
    check(yes === true && no === false, `exists ${yes} ${no}`)
    return null
  })

  await step('remove', async () => {
    await Backendless.Files.remove(`${dir}/note.txt`)
    const gone = await Backendless.Files.exists(`${dir}/note.txt`)
    check(gone === false, 'still there after remove')
    return expectError(6000, () => Backendless.Files.remove(`${dir}/note.txt`))
  })

  await step('privateDeniedToAnonymous', async () => {
    await Backendless.Files.saveFile('/private', `js-${process.pid}.txt`, Buffer.from('x'), true)
    const user = Backendless.UserService.currentUser
    Backendless.UserService.setCurrentUser(null)
    try {
      return await expectError(6006, () => Backendless.Files.exists(`/private/js-${process.pid}.txt`))
    } finally {
      Backendless.UserService.setCurrentUser(user)
    }
  })

  await step('publish', async () => {
    const options = new Backendless.Messaging.PublishOptions({ headers: { city: 'Oslo' }, subtopic: 'weather.today' })
    const status = await Backendless.Messaging.publish('conformance', { temperature: 3 }, options)
    check(status && typeof status.messageId === 'string', `publish returned ${JSON.stringify(status)}`)
    facts.messageId = status.messageId
    return status
  })

  await step('sendEmail', async () => {
    const body = new Backendless.Messaging.Bodyparts({ textmessage: 'Hello from the JS SDK', htmlmessage: '<b>Hello</b>' })
    const status = await Backendless.Messaging.sendEmail('Conformance', body, ['bob@example.com'])
    check(status && typeof status.messageId === 'string', `sendEmail returned ${JSON.stringify(status)}`)
    facts.emailId = status.messageId
    return status
  })

  await step('logout', async () => {
    await Backendless.UserService.logout()
    return null
  })
}

run(main)
