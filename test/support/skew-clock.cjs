// Preload (`node --require`) that moves this process's wall clock by CLOCK_SKEW_MS milliseconds:
// Date.now() and `new Date()` are shifted, as on a host whose clock is wrong; performance.now()
// (monotonic) is not, as on such a host.
/* global process */
'use strict';
const skewMs = Number(process.env.CLOCK_SKEW_MS || 0);
if (skewMs !== 0 && Number.isFinite(skewMs)) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(realNow() + skewMs);
      else super(...args);
    }
    static now() {
      return realNow() + skewMs;
    }
  }
  globalThis.Date = SkewedDate;
}
