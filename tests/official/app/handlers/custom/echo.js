'use strict'

// h. custom event "echo" (event 900): req.args is arguments[1] of the task.
Backendless.ServerCode.customEvent('echo', req => {
  return { echo: req.args }
})
