/** The time limits of the worker service (`startWorkerService`) and of its cycle thread. */
export const WORKER_SERVICE_DEFAULTS = Object.freeze({
  /** How long the first cycle waits for Redis at start; after that, cycles fail until it answers. */
  startupRedisWaitMs: 2000,
  /** How long QUIT may take at shutdown before the connection is dropped. */
  quitTimeoutMs: 1000,
  /** How long the cycle thread may take to load and report itself before the start fails. */
  threadStartTimeoutMs: 60_000,
  /**
   * How long a stopping cycle thread may take to finish its cycle and release the lease before it is
   * terminated (a cycle is bounded by the Redis command and heat timeouts, well below this).
   */
  threadStopTimeoutMs: 30_000,
  /** How long /metrics waits for the cycle thread's metrics before it serves the last ones it got. */
  threadMetricsTimeoutMs: 2000,
  /** Delay before a crashed cycle thread is started again; doubled on every crash in a row, up to the next. */
  threadRestartDelayMs: 1000,
  threadMaxRestartDelayMs: 30_000,
  /**
   * The nice value of the cycle thread (Linux): under CPU contention the main thread, which answers
   * decisions, runs before it. 0 leaves the thread as the process.
   */
  threadNice: 10,
});
