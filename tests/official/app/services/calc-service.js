'use strict'

// j. API service CalcService.
class CalcService {
  /**
   * @param {Number} a
   * @param {Number} b
   * @returns {Number}
   * @route POST /sum
   */
  sum(a, b) {
    this.response.statusCode = 202

    return a + b
  }
}

Backendless.ServerCode.addService(CalcService)
