import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { DEFAULT_KEY_PREFIX, RedisKeys } from '../lib/redis/keys';
import { parseRedisUrl } from '../lib/redis/redis-url';
import { OptionsError, type OptionIssue } from '../lib/options-error';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';

/** The default gate instance name: host and process. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`;
}

/** One numeric option of the gate: its default, its bounds and what it means. */
export interface GateOptionSpec {
  default: number;
  min: number;
  max: number;
  integer?: boolean;
  /** Unit of the value, as the docs tables show it. */
  unit: 'ms' | '%' | 'reads' | 'buckets' | 'entries';
  doc: string;
}

/**
 * Every numeric option of the gate, with its default, bounds and meaning: the one source from which
 * `BUDGET_GATE_DEFAULTS`, the validation in `resolveGateOptions` and the docs' option table come.
 */
export const GATE_OPTION_SPECS = Object.freeze({
  timeoutMs: {
    default: 50, min: 1, max: 60000, unit: 'ms',
    // A single-key read on a healthy Redis answers in well under 5 ms, so 50 ms is ten times that
    // with room for a GC pause; past it the gate fails open with `timeout`, one unenforced permit.
    doc: 'Longest wait for the budget hash; past it the decision fails open with `timeout`.',
  },
  errorThresholdPercentage: {
    default: 50, min: 0, max: 100, unit: '%',
    doc: 'Share of failed reads in the rolling window at which the breaker opens.',
  },
  resetTimeoutMs: {
    default: 5000, min: 1, max: 3600000, unit: 'ms',
    // Budgets are recomputed every few seconds, so enforcement resumes soon after Redis recovers.
    doc: 'How long an open breaker answers `breaker_open` before one trial read (half-open).',
  },
  volumeThreshold: {
    default: 5, min: 0, max: 1e6, integer: true, unit: 'reads',
    doc: 'Reads in the rolling window before the breaker may open: one slow read never opens it.',
  },
  consecutiveFailuresToOpen: {
    default: 5, min: 1, max: 1e6, integer: true, unit: 'reads',
    // The percentage window alone never opens under heavy traffic: tens of thousands of earlier
    // successes keep the failed share below the threshold for the whole window while every
    // decision waits timeoutMs. A run of failed reads with no success between them means Redis
    // stopped answering, whatever came before.
    doc: 'Failed or timed-out reads in a row, with no success between them, that open the breaker (once they span `failureStreakMs`).',
  },
  failureStreakMs: {
    default: 400, min: 0, max: 3600000, unit: 'ms',
    // Hundreds of callers share one stall: a pause of a loaded host times out every read in flight
    // at once, and the reads queued behind them can follow. Only failures that go on, with no
    // success, for this long mean Redis stopped; 400 ms still opens within half a second of a freeze.
    doc: 'How long a run of failed reads (no success between them) must last before it opens the breaker.',
  },
  rollingCountTimeoutMs: {
    default: 10000, min: 1, max: 3600000, unit: 'ms',
    doc: "Length of the breaker's rolling statistics window.",
  },
  rollingCountBuckets: {
    default: 10, min: 1, max: 1000, integer: true, unit: 'buckets',
    doc: 'Buckets the rolling window is divided into.',
  },
  staleAfterMs: {
    default: 60000, min: 0, max: 86400000, unit: 'ms',
    doc: 'A budget hash whose `timestamp` is older than this is stale: fail open.',
  },
  violationWindowMs: {
    default: 30000, min: 0, max: 86400000, unit: 'ms',
    doc: 'A violation younger than this blocks every increasing plan for the symbol.',
  },
  reservationTtlMs: {
    default: 30000, min: 0, max: 3600000, unit: 'ms',
    // Long enough for an order to be sent, filled and show in the next budget cycle's position (a
    // few seconds), short enough that a plan whose fill nobody reports stops holding headroom soon.
    doc: 'How long an allowed increasing plan holds its projected increase against the headroom at most (0: reserve nothing; others\' reservations still count).',
  },
  maxClockSkewMs: {
    default: 5000, min: 0, max: 86400000, unit: 'ms',
    // Small clock differences between hosts are tolerated; a hash dated far ahead is not trusted.
    doc: 'How far a `timestamp` may lie in the future before the hash is treated as stale.',
  },
  decisionLogMaxLen: {
    default: 1000000, min: 0, max: 1e9, integer: true, unit: 'entries',
    // A day of a busy Governor's decisions at a few hundred bytes each in Redis; readiness reads 24 h.
    doc: 'Approximate length bound of the decision log `quantum:stream:p28.decisions` (XADD MAXLEN ~); 0 turns the log off. See docs/decision-log.md.',
  },
} satisfies Record<string, GateOptionSpec>);

type NumericOption = keyof typeof GATE_OPTION_SPECS;

const numericDefaults = Object.fromEntries(
  Object.entries(GATE_OPTION_SPECS).map(([name, spec]) => [name, spec.default]),
) as Record<NumericOption, number>;

/**
 * Defaults of the budget gate, derived from `GATE_OPTION_SPECS` plus the key prefix and the two
 * emergency switches. Options not here have no default (`redis`/`redisUrl`, `registry`, `logger`, `now`).
 */
export const BUDGET_GATE_DEFAULTS = Object.freeze({
  /** Prefix of every key the gate reads (`quantum:portfolio:budget:<SYMBOL>`). */
  keyPrefix: DEFAULT_KEY_PREFIX,
  ...numericDefaults,
  /**
   * Whether the gate's own client (`redisUrl`) sends reads issued in the same tick in one write
   * (ioredis auto-pipelining). Off by default: it defers every read to the next turn of the event
   * loop, which costs a serial decision several µs, and holds a read back while the previous batch
   * is unanswered; `batchConcurrentReads` batches concurrent reads without either cost. A client
   * passed in keeps its own setting.
   */
  autoPipelining: false,
  /**
   * Whether reads issued while others are in flight leave in one write per turn of the event loop
   * (the socket corked until the turn's work is done; `plugin/write-batching.ts`). A read with none
   * in flight is written at once. Standalone and Sentinel clients, the gate's own or one passed in.
   */
  batchConcurrentReads: true,
  /** Emergency switch: allow every plan with `gate_disabled`, never touching Redis. */
  disabled: false,
  /** Emergency switch: act as if every budget hash said `mode=shadow` (never block). */
  forceShadow: false,
  /**
   * In-process copy of budget hashes kept coherent by Redis CLIENT TRACKING (see docs/gate.md,
   * "Local cache"). Off by default: it adds a connection and a heartbeat per gate, and does
   * nothing on Redis Cluster.
   */
  localCache: false,
});

/** The type of a default's value (`boolean` of `false`, `string` of `'quantum'`). */
type Widened<T> = T extends boolean ? boolean : T extends string ? string : T extends number ? number : T;

/**
 * The options with every default filled in: `BUDGET_GATE_DEFAULTS` (the numeric ones from
 * `GATE_OPTION_SPECS`), the clock, and the options that have no default.
 */
export type ResolvedGateOptions = { -readonly [K in keyof typeof BUDGET_GATE_DEFAULTS]: Widened<(typeof BUDGET_GATE_DEFAULTS)[K]> } & {
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
  /**
   * prom-client Registry for the gate's metrics. Default: a private registry of the gate
   * (`gate.registry`), never the global one unless passed here.
   */
  registry?: Registry;
  /** pino logger. Default: silent. */
  logger?: Logger;
  /** The gate's name in its decision log entries. Default host-pid. */
  instanceId: string;
  /** The way in named in decision log entries: `node` (default) or `http` (the worker's HTTP API). */
  via: 'node' | 'http';
  /** Clock in epoch ms. Default: Redis's clock (`ServerClock`: the host clock plus an offset measured with TIME at each connection and every 30 s). */
  now: () => number;
};

/**
 * Options of the budget gate. Exactly one of `redis` and `redisUrl` is required; every other
 * option is optional, with its default in `BUDGET_GATE_DEFAULTS` (the numeric ones, with their
 * bounds and meaning, in `GATE_OPTION_SPECS`). `localCache` keeps an in-process copy of budget
 * hashes kept coherent by Redis server-assisted client-side caching: a hit decides without a round
 * trip, and while Redis is unreachable a cached hash still within `staleAfterMs` keeps being
 * enforced (standalone and Sentinel only; on a Cluster client it is logged and ignored).
 */
export type BudgetGateOptions = Partial<ResolvedGateOptions>;

/**
 * The options that are not numbers, with how the docs show their default and what they mean: with
 * `GATE_OPTION_SPECS`, the source of docs/gate.md's option table (`npm run docs:gen`). The type
 * makes a new option without a row here fail the build.
 */
export const GATE_OTHER_OPTION_DOCS: { readonly [K in Exclude<keyof BudgetGateOptions, NumericOption>]: { default: string; doc: string } } = Object.freeze({
  redis: { default: 'none', doc: 'an existing ioredis client or cluster; never closed by the gate' },
  redisUrl: {
    default: 'none',
    doc: 'redis:// or rediss:// URL; the gate opens its own fail-fast client (no offline queue, no retries, command timeout `timeoutMs`) and closes it in `close()`',
  },
  keyPrefix: { default: `\`${DEFAULT_KEY_PREFIX}\``, doc: 'prefix of the budget keys' },
  autoPipelining: {
    default: 'false',
    doc: 'the gate\'s own client (`redisUrl`) sends reads issued in the same tick in one write (ioredis auto-pipelining); costs a serial decision a turn of the event loop and holds a read back until the previous batch is answered; `batchConcurrentReads` batches without either cost',
  },
  batchConcurrentReads: {
    default: 'true',
    doc: 'reads issued while others are in flight leave in one write per turn of the event loop (the socket is corked until the turn\'s work is done); a read with none in flight is written at once, so a serial decision pays nothing. Standalone and Sentinel clients, the gate\'s own or one passed in',
  },
  registry: { default: 'a private registry (`gate.registry`)', doc: "prom-client Registry for the gate's metrics; never the global registry unless passed" },
  logger: { default: 'silent', doc: 'pino logger' },
  disabled: { default: 'false', doc: 'start disabled (`gate_disabled`)' },
  forceShadow: { default: 'false', doc: 'start forced to shadow' },
  localCache: { default: 'false', doc: 'keep an in-process copy of budget hashes kept coherent by Redis CLIENT TRACKING; see [Local cache](#local-cache)' },
  now: { default: "Redis's clock", doc: 'clock in epoch ms; by default the host clock plus the offset to Redis measured with TIME at each connection and every 30 s (`ServerClock`)' },
  instanceId: { default: '`<hostname>-<pid>`', doc: 'the gate\'s name in its decision log entries' },
  via: { default: '`node`', doc: 'the way in named in decision log entries (`http` is set by the worker\'s HTTP API)' },
});

/** The options a decision depends on besides the request, the hash and the clock. */
const DECISION_POLICY_OPTIONS = ['staleAfterMs', 'violationWindowMs', 'maxClockSkewMs', 'forceShadow'] as const;

/**
 * The settings a decision depends on besides the request, the hash and the clock: the gate options
 * `staleAfterMs` (a hash older than this is stale), `violationWindowMs` (a younger violation
 * blocks increasing plans), `maxClockSkewMs` (how far ahead a timestamp may be) and `forceShadow`.
 */
export type DecisionPolicy = Pick<ResolvedGateOptions, (typeof DECISION_POLICY_OPTIONS)[number]>;

/** The decision policy of resolved gate options (a copy: the gate switches `forceShadow` on its own). */
export function decisionPolicyOf(options: DecisionPolicy): DecisionPolicy {
  return Object.fromEntries(DECISION_POLICY_OPTIONS.map((name) => [name, options[name]])) as DecisionPolicy;
}

/** The decision policy of the gate's defaults. */
export const DEFAULT_DECISION_POLICY: Readonly<DecisionPolicy> = Object.freeze(decisionPolicyOf(BUDGET_GATE_DEFAULTS));

/** Thrown by the gate's constructor when its options are unusable; lists every issue at once. */
export class GateOptionsError extends OptionsError {
  readonly code = 'P28_GATE_OPTIONS';
  constructor(issues: readonly OptionIssue[]) {
    super('invalid budget gate options', issues);
    this.name = 'GateOptionsError';
  }
}

/** Merges `options` over the defaults and checks them; throws `GateOptionsError`. */
export function resolveGateOptions(options: BudgetGateOptions): ResolvedGateOptions {
  const issues: OptionIssue[] = [];
  const resolved: ResolvedGateOptions = { ...BUDGET_GATE_DEFAULTS, instanceId: defaultInstanceId(), via: 'node', now: Date.now };
  for (const name of Object.keys(GATE_OPTION_SPECS) as NumericOption[]) {
    const value = options[name];
    if (value === undefined) continue;
    const { min, max, integer } = GATE_OPTION_SPECS[name] as GateOptionSpec;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      issues.push({ field: name, message: `must be ${integer ? 'a whole number' : 'a number'} in [${min}, ${max}], got ${String(value)}` });
    } else {
      resolved[name] = value;
    }
  }
  if ((options.redis === undefined) === (options.redisUrl === undefined)) {
    issues.push({ field: 'redis', message: 'exactly one of redis and redisUrl is required' });
  }
  if (options.redisUrl !== undefined) {
    try {
      if (typeof options.redisUrl !== 'string') throw new Error('must be a redis:// or rediss:// URL');
      parseRedisUrl(options.redisUrl);
    } catch (error) {
      // RedisUrlError's message shows the URL with its credentials hidden.
      issues.push({ field: 'redisUrl', message: (error as Error).message });
    }
  }
  if (options.keyPrefix !== undefined) {
    try {
      resolved.keyPrefix = new RedisKeys(options.keyPrefix).prefix;
    } catch (error) {
      issues.push({ field: 'keyPrefix', message: (error as Error).message });
    }
  }
  if (options.autoPipelining !== undefined) resolved.autoPipelining = options.autoPipelining === true;
  if (options.batchConcurrentReads !== undefined) resolved.batchConcurrentReads = options.batchConcurrentReads === true;
  if (options.disabled !== undefined) resolved.disabled = options.disabled === true;
  if (options.forceShadow !== undefined) resolved.forceShadow = options.forceShadow === true;
  if (options.localCache !== undefined) {
    if (typeof options.localCache === 'boolean') resolved.localCache = options.localCache;
    else issues.push({ field: 'localCache', message: 'must be true or false' });
  }
  if (options.instanceId !== undefined) {
    if (typeof options.instanceId === 'string' && /^\S{1,200}$/.test(options.instanceId)) resolved.instanceId = options.instanceId;
    else issues.push({ field: 'instanceId', message: 'must be 1 to 200 characters without spaces' });
  }
  if (options.via !== undefined) {
    if (options.via === 'node' || options.via === 'http') resolved.via = options.via;
    else issues.push({ field: 'via', message: 'must be node or http' });
  }
  if (options.now !== undefined) {
    if (typeof options.now === 'function') resolved.now = options.now;
    else issues.push({ field: 'now', message: 'must be a function returning epoch ms' });
  }
  if (issues.length > 0) throw new GateOptionsError(issues);
  resolved.redis = options.redis;
  resolved.redisUrl = options.redisUrl;
  resolved.registry = options.registry;
  resolved.logger = options.logger;
  return resolved;
}
