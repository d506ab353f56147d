'use strict'

// i. timer "tick" (event 800), custom schedule every 60 s. startDate is fixed so that the
// generated model.json is the same on every run.
Backendless.ServerCode.addTimer({
  name     : 'tick',
  startDate: 1764460800000,
  frequency: {
    schedule: 'custom',
    repeat  : { every: 60 }
  },

  execute() {
  }
})
