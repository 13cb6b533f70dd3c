// A cycle thread that fails while it loads (a broken module), before it reports itself.
// test/integration/worker/cycle-thread.redis.test.ts runs it.
throw new Error('the cycle thread module cannot load');
