/** What each readiness item is held to. Shares are fractions (0.05 = 5 %). */
export const READINESS_THRESHOLDS = Object.freeze({
  /** Shadow stable: largest share of the leader's cycles that may fail. */
  maxFailedCycleShare: 0.01,
  /** No false positives: largest share of would-blocks that the recorded data may leave unexplained. */
  maxUnexplainedShare: 0.01,
  /** A symbol's would-block rate stands out when it is at least this ... */
  outlierMinRate: 0.2,
  /** ... and this many times the rate over all symbols ... */
  outlierRateFactor: 3,
  /** ... over at least this many judged decisions. */
  outlierMinDecisions: 20,
  /** A symbol flaps when it went over budget again this many times per 24 h of window (at least 5). */
  flapOnsetsPer24h: 10,
  /** Governor integration: largest share of decisions that may fail open. */
  maxFailOpenShare: 0.01,
  /** The guide: stale inputs under 5 % of computations. */
  maxStaleInputShare: 0.05,
  /** Budget accuracy: a budget may differ from its recomputation by this much (USD; one cent of rounding). */
  budgetToleranceUsd: 0.01,
  /** Distinct hashes recomputed at most (current hashes and the hashes decisions used). */
  maxAccuracyChecks: 100000,
});
export type ReadinessThresholds = typeof READINESS_THRESHOLDS;

/** The thresholds in force: the defaults, with the ones a context sets instead. */
export const thresholdsWith = (overrides: Partial<ReadinessThresholds> | undefined): ReadinessThresholds => ({ ...READINESS_THRESHOLDS, ...overrides });
