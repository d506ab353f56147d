'use strict'

// Persistence handlers on the table "Order" for the differential test.
// Backendless is the global the official runner provides (same object as require('backendless')).

// a. beforeCreate: changes the argument and continues.
Backendless.ServerCode.Persistence.beforeCreate('Order', req => {
  req.item.title = String(req.item.title).trim()
  req.item.normalized = true
})

// b. beforeUpdate: short-circuits with its own result.
Backendless.ServerCode.Persistence.beforeUpdate('Order', () => {
  return { short: 'circuit' }
})

// c. beforeRemove: coded error with an HTTP status.
Backendless.ServerCode.Persistence.beforeRemove('Order', () => {
  throw new Backendless.ServerCode.Error(4001, 'orders cannot be removed', 422)
})

// d. afterCreate: replaces the result.
Backendless.ServerCode.Persistence.afterCreate('Order', (req, res) => {
  return { replaced: true, title: res.result.title }
})

// e. afterUpdate: registered async (the task is sent with async:true, the reply is an empty string).
Backendless.ServerCode.Persistence.afterUpdate('Order', () => {
}, true)

// f. beforeFind: never finishes (tasks for it are sent with timeout 1000 ms).
Backendless.ServerCode.Persistence.beforeFind('Order', async () => {
  await new Promise(() => {})
})

// g. afterFind: plain error (code 0, httpStatusCode -1).
Backendless.ServerCode.Persistence.afterFind('Order', () => {
  throw new Error('plain error')
})
