import type { Registry } from 'prom-client';
import { RedisKeys } from '../lib/keys';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis';

/**
 * Defaults of the budget gate. Every option of `BudgetGateOptions` not given here has no default
 * (`redis`/`redisUrl`, `registry`, `logger`, `now`; see their docs).
 */
export const BUDGET_GATE_DEFAULTS = Object.freeze({
  /** Prefix of every key the gate reads (`quantum:portfolio:budget:<SYMBOL>`). */
  keyPrefix: 'quantum',
  /**
   * Longest wait for the budget hash, in ms. A single-key HGETALL on a healthy Redis answers in
   * well under 5 ms, so 50 ms is ten times that with room for a GC pause; past it the gate fails
   * open with `timeout`, which costs one unenforced permit and nothing more.
   */
  timeoutMs: 50,
  /** Share of failed reads (in %) in the rolling window at which the breaker opens. */
  errorThresholdPercentage: 50,
  /**
   * How long an open breaker answers `breaker_open` before one trial read (half-open), in ms.
   * Budgets are recomputed every few seconds, so enforcement resumes soon after Redis recovers.
   */
  resetTimeoutMs: 5000,
  /** Reads in the rolling window before the breaker may open: one slow read never opens it. */
  volumeThreshold: 5,
  /** Length of the breaker's rolling statistics window, in ms. */
  rollingCountTimeoutMs: 10000,
  /** Buckets the rolling window is divided into. */
  rollingCountBuckets: 10,
  /** A budget hash whose `timestamp` is older than this (ms) is stale: fail open. */
  staleAfterMs: 60000,
  /** A violation younger than this (ms) blocks every increasing plan for the symbol. */
  violationWindowMs: 30000,
  /**
   * How far (ms) a `timestamp` may lie in the future before it is treated as stale: small clock
   * differences between hosts are tolerated, a hash dated far ahead is not trusted.
   */
  maxClockSkewMs: 5000,
  /** Emergency switch: allow every plan with `gate_disabled`, never touching Redis. */
  disabled: false,
  /** Emergency switch: act as if every budget hash said `mode=shadow` (never block). */
  forceShadow: false,
});

/**
 * Options of the budget gate. Exactly one of `redis` and `redisUrl` is required; every other
 * option has the default in `BUDGET_GATE_DEFAULTS` or the one stated here.
 */
export interface BudgetGateOptions {
  /**
   * An existing ioredis client or cluster to read through. The gate never closes it. Give it the
   * fail-fast settings of `createRedisClient({ profile: 'gate' })`: with an offline queue or
   * retries a command can wait for a reconnect, and only the breaker timeout would bound it.
   */
  redis?: RedisClient;
  /**
   * redis:// or rediss:// URL: the gate creates its own fail-fast client (`profile: 'gate'`,
   * command timeout `timeoutMs`) and closes it in `close()`.
   */
  redisUrl?: string;
  /** Default `quantum`. */
  keyPrefix?: string;
  /** Default 50 ms. The breaker timeout of the one Redis read per decision. */
  timeoutMs?: number;
  /** Default 50 (%). */
  errorThresholdPercentage?: number;
  /** Default 5000 ms. */
  resetTimeoutMs?: number;
  /** Default 5 reads. */
  volumeThreshold?: number;
  /** Default 10000 ms. */
  rollingCountTimeoutMs?: number;
  /** Default 10. */
  rollingCountBuckets?: number;
  /** Default 60000 ms. */
  staleAfterMs?: number;
  /** Default 30000 ms. */
  violationWindowMs?: number;
  /** Default 5000 ms. */
  maxClockSkewMs?: number;
  /**
   * prom-client Registry for the gate's metrics. Default: a private registry of the gate
   * (`gate.registry`), never the global one unless passed here.
   */
  registry?: Registry;
  /** pino logger. Default: silent. */
  logger?: Logger;
  /** Default false. See `BudgetGate.setDisabled`. */
  disabled?: boolean;
  /** Default false. See `BudgetGate.setForceShadow`. */
  forceShadow?: boolean;
  /** Clock in epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** Thrown by the gate's constructor when its options are unusable; lists every problem at once. */
export class GateOptionsError extends TypeError {
  readonly code = 'P28_GATE_OPTIONS';
  constructor(readonly problems: string[]) {
    super(`invalid budget gate options: ${problems.join('; ')}`);
    this.name = 'GateOptionsError';
  }
}

type NumericOption =
  | 'timeoutMs'
  | 'errorThresholdPercentage'
  | 'resetTimeoutMs'
  | 'volumeThreshold'
  | 'rollingCountTimeoutMs'
  | 'rollingCountBuckets'
  | 'staleAfterMs'
  | 'violationWindowMs'
  | 'maxClockSkewMs';

const NUMERIC_BOUNDS: Record<NumericOption, { min: number; max: number; integer?: boolean }> = {
  timeoutMs: { min: 1, max: 60000 },
  errorThresholdPercentage: { min: 0, max: 100 },
  resetTimeoutMs: { min: 1, max: 3600000 },
  volumeThreshold: { min: 0, max: 1e6, integer: true },
  rollingCountTimeoutMs: { min: 1, max: 3600000 },
  rollingCountBuckets: { min: 1, max: 1000, integer: true },
  staleAfterMs: { min: 0, max: 86400000 },
  violationWindowMs: { min: 0, max: 86400000 },
  maxClockSkewMs: { min: 0, max: 86400000 },
};

/** The options with every default filled in. */
export interface ResolvedGateOptions extends Record<NumericOption, number> {
  keyPrefix: string;
  disabled: boolean;
  forceShadow: boolean;
  redis?: RedisClient;
  redisUrl?: string;
  registry?: Registry;
  logger?: Logger;
  now: () => number;
}

/** Merges `options` over the defaults and checks them; throws `GateOptionsError`. */
export function resolveGateOptions(options: BudgetGateOptions): ResolvedGateOptions {
  const problems: string[] = [];
  const resolved: ResolvedGateOptions = { ...BUDGET_GATE_DEFAULTS, now: Date.now };
  for (const name of Object.keys(NUMERIC_BOUNDS) as NumericOption[]) {
    const value = options[name];
    if (value === undefined) continue;
    const { min, max, integer } = NUMERIC_BOUNDS[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problems.push(`${name} must be ${integer ? 'a whole number' : 'a number'} in [${min}, ${max}], got ${String(value)}`);
    } else {
      resolved[name] = value;
    }
  }
  if ((options.redis === undefined) === (options.redisUrl === undefined)) {
    problems.push('exactly one of redis and redisUrl is required');
  }
  if (options.redisUrl !== undefined && !/^rediss?:\/\//.test(options.redisUrl)) {
    problems.push('redisUrl must start with redis:// or rediss://');
  }
  if (options.keyPrefix !== undefined) {
    try {
      resolved.keyPrefix = new RedisKeys(options.keyPrefix).prefix;
    } catch (error) {
      problems.push(`keyPrefix: ${(error as Error).message}`);
    }
  }
  if (options.disabled !== undefined) resolved.disabled = options.disabled === true;
  if (options.forceShadow !== undefined) resolved.forceShadow = options.forceShadow === true;
  if (options.now !== undefined) {
    if (typeof options.now === 'function') resolved.now = options.now;
    else problems.push('now must be a function returning epoch ms');
  }
  if (problems.length > 0) throw new GateOptionsError(problems);
  resolved.redis = options.redis;
  resolved.redisUrl = options.redisUrl;
  resolved.registry = options.registry;
  resolved.logger = options.logger;
  return resolved;
}
