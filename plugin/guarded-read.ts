import CircuitBreaker from 'opossum';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';
import { isTimeout, isWrongType } from '../lib/redis/error-cause';
import type { RedisKeys } from '../lib/redis/keys';
import type { ScriptCommands } from '../lib/redis/lua-scripts';
import { redisModeOf } from '../lib/redis/redis-modes';
import type { FailOpenReason, PermitRequest } from '../types/permit';
import { errorDetail, type DecisionPolicy } from './decide';
import { BREAKER_STATE, type GateMetrics } from './gate-metrics';
import type { ResolvedGateOptions } from './gate-options';
import type { GateLocalCache } from './local-cache';
import { KnownFieldsMemo, type KnownFields } from './known-fields-memo';
import { planScriptArgs } from './plan-script';
import { WriteBatching } from './write-batching';

/**
 * What one guarded call of the decision script gave: its reply, or why there is none. With
 * `fields: 'changed'`, `known` holds the hash's known fields the decision was judged on (from the
 * reply, or the gate's copy when the script found them unchanged).
 */
export type BudgetRead =
  | { ok: true; reply: Array<string | null>; known?: KnownFields }
  | { ok: false; reason: FailOpenReason; detail: string };

/**
 * What the script returns of the hash's known fields: nothing, every value on every call (the
 * local cache keeps them), or only the values that changed since the gate's copy (the decision log
 * notes them on each decision).
 */
export type FieldsMode = 'none' | 'all' | 'changed';

export type BreakerStateName = 'closed' | 'halfOpen' | 'open' | 'shutdown';

/** Causes that say Redis itself is unreachable or slow, as opposed to a problem with one hash. */
export const REDIS_CAUSES: ReadonlySet<FailOpenReason> = new Set(['redis_unavailable', 'timeout', 'breaker_open']);

const BREAKER_OPEN_READ: BudgetRead = Object.freeze({ ok: false, reason: 'breaker_open', detail: 'breaker_open' });

function errorCode(error: unknown): unknown {
  return error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
}

export interface GuardedReadParts {
  client: RedisClient & ScriptCommands;
  options: ResolvedGateOptions;
  keys: RedisKeys;
  metrics: GateMetrics;
  logger: Logger;
  /** The gate's clock: the script judges ages on it. */
  now: () => number;
  /** The gate's decision settings (the same object: its `forceShadow` switch applies at once). */
  policy: DecisionPolicy;
  /** The call goes through the local cache when there is one. */
  localCache: GateLocalCache | undefined;
  /** What the script appends of the hash's known fields (`FieldsMode`). */
  fields: FieldsMode;
}

/**
 * The gate's one guarded Redis call per decision: the decision script (`decide-plan-1.lua`) inside
 * an opossum circuit breaker. The call is bounded by one timer: the client's command timeout when
 * it has one no longer than `timeoutMs` (the gate's own client always does), else the breaker's.
 * The breaker opens on its percentage window or on a run of failed reads with no success between
 * them (`consecutiveFailuresToOpen` reads lasting `failureStreakMs`), and closes at once when the
 * client connects again. Every failure is turned into its fail-open reason here; a key holding
 * another type is bad data (`invalid_budget_data`), never a breaker failure.
 */
export class GuardedRead {
  private readonly breaker: CircuitBreaker<[string, readonly string[], boolean], Array<string | null>>;
  private consecutiveFailures = 0;
  /** performance.now() of the first failure of the current run of failed reads. */
  private failureStreakStartedAt = 0;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private readonly client: RedisClient & ScriptCommands;
  private readonly options: ResolvedGateOptions;
  private readonly keys: RedisKeys;
  private readonly metrics: GateMetrics;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly policy: DecisionPolicy;
  private readonly localCache: GateLocalCache | undefined;
  private readonly fields: FieldsMode;
  /** With `fields: 'changed'`: the values the script last returned, per symbol. */
  private readonly known: KnownFieldsMemo | undefined;
  /** With option `batchConcurrentReads`: reads issued while others are in flight leave in one write. */
  private readonly batching: WriteBatching | undefined;

  private readonly onReconnected = (): void => {
    if (this.breaker.isShutdown || this.breaker.closed) return;
    this.logger.info({ breaker: this.state }, 'redis connection ready again: budget gate breaker closed without waiting for resetTimeoutMs');
    this.breaker.close();
  };

  constructor(parts: GuardedReadParts) {
    const { client, options: o, metrics, logger } = parts;
    this.client = client;
    this.options = o;
    this.keys = parts.keys;
    this.metrics = metrics;
    this.logger = logger;
    this.now = parts.now;
    this.policy = parts.policy;
    this.localCache = parts.localCache;
    this.fields = parts.fields;
    if (parts.fields === 'changed') this.known = new KnownFieldsMemo();
    if (o.batchConcurrentReads) this.batching = new WriteBatching(client);
    // One timer per read: the client's command timeout already bounds it when it is no longer
    // than timeoutMs, and a second timer in the breaker would only add its cost.
    const clientTimeout = redisModeOf(client).commandTimeoutMs(client);
    const clientBoundsRead = clientTimeout !== undefined && clientTimeout > 0 && clientTimeout <= o.timeoutMs;
    this.breaker = new CircuitBreaker((key: string, args: readonly string[], hmget: boolean) => this.call(key, args, hmget), {
      name: 'p28_budget_gate',
      timeout: clientBoundsRead ? false : o.timeoutMs,
      errorThresholdPercentage: o.errorThresholdPercentage,
      resetTimeout: o.resetTimeoutMs,
      volumeThreshold: o.volumeThreshold,
      rollingCountTimeout: o.rollingCountTimeoutMs,
      rollingCountBuckets: o.rollingCountBuckets,
      // A key holding another type is bad data, not an unavailable Redis: kept out of the failure statistics.
      errorFilter: isWrongType,
      // The gate keeps its own latency histogram; no percentile work or snapshot timer per breaker.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.breaker.on('open', () => {
      metrics.breakerEvent('open');
      metrics.setBreakerState(BREAKER_STATE.open);
      logger.warn({ resetTimeoutMs: o.resetTimeoutMs }, 'budget gate breaker opened: failing open without reading Redis');
    });
    this.breaker.on('halfOpen', () => {
      metrics.breakerEvent('halfOpen');
      metrics.setBreakerState(BREAKER_STATE.halfOpen);
    });
    // A new connection (ioredis reconnected: to the new master after a Sentinel failover, to a
    // restarted server) is news the open breaker cannot have: the cause it opened on may be gone.
    // Waiting out resetTimeoutMs would fail every decision open for seconds after Redis is back;
    // the breaker is closed at once instead, and a run of failures opens it again within
    // failureStreakMs if the new connection fails too.
    client.on('ready', this.onReconnected);
    this.breaker.on('close', () => {
      this.consecutiveFailures = 0;
      metrics.breakerEvent('close');
      metrics.setBreakerState(BREAKER_STATE.closed);
      logger.info('budget gate breaker closed: reading Redis again');
    });
  }

  get state(): BreakerStateName {
    if (this.breaker.isShutdown) return 'shutdown';
    if (this.breaker.halfOpen) return 'halfOpen';
    if (this.breaker.opened) return 'open';
    return 'closed';
  }

  /** Reads started and not yet settled (a read that timed out still settles later). */
  get pending(): number {
    return this.inFlight;
  }

  /**
   * One guarded call of the decision script for a plan: never rejects. While the breaker lets
   * nothing through it answers `breaker_open` at once, without a call and without the error
   * opossum would build for a rejected call.
   */
  read(plan: PermitRequest): BudgetRead | Promise<BudgetRead> {
    const breaker = this.breaker;
    if (!breaker.closed && !breaker.pendingClose) {
      this.metrics.breakerEvent('reject');
      this.metrics.breakerEvent('fallback');
      return BREAKER_OPEN_READ;
    }
    // The script's arguments are built only for a call that is made: an open breaker answers without them.
    const known = this.known;
    if (known === undefined) return this.fire(plan, planScriptArgs(plan, this.now(), this.policy, this.options.reservationTtlMs, this.fields === 'all'));
    const copy = known.get(plan.symbol);
    const args = planScriptArgs(plan, this.now(), this.policy, this.options.reservationTtlMs, copy?.joined ?? true);
    return this.fire(plan, args).then((read) => {
      if (!read.ok) return read;
      const fields = known.fromReply(plan.symbol, read.reply, copy);
      return fields === undefined ? read : { ok: true, reply: read.reply, known: fields };
    });
  }

  /**
   * `read`, with HMGET of `fields` instead of the decision script: the reply is their values
   * (`plugin/repeat-block.ts`). The same breaker, timeout and fail-open reasons.
   */
  readFields(plan: PermitRequest, fields: readonly string[]): BudgetRead | Promise<BudgetRead> {
    const breaker = this.breaker;
    if (!breaker.closed && !breaker.pendingClose) {
      this.metrics.breakerEvent('reject');
      this.metrics.breakerEvent('fallback');
      return BREAKER_OPEN_READ;
    }
    return this.fire(plan, fields, true);
  }

  private fire(plan: PermitRequest, args: readonly string[], hmget = false): Promise<BudgetRead> {
    return this.breaker.fire(this.keys.budget(plan.symbol), args, hmget).then(this.readSucceeded, this.readFailed);
  }

  /** Stops the breaker and its timers and the reconnection listener: later reads answer `breaker_open`. */
  shutdown(): void {
    this.breaker.shutdown();
    this.client.off('ready', this.onReconnected);
  }

  /** Resolves once the reads in flight have settled, or after `waitMs`. */
  drain(waitMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.drained = this.drained.filter((waiter) => waiter !== done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.drained.push(done);
    });
  }

  // Bound once, not a closure per read.
  private readonly readSucceeded = (reply: Array<string | null>): BudgetRead => {
    this.consecutiveFailures = 0;
    this.metrics.breakerEvent('success');
    return { ok: true, reply };
  };

  private readonly readFailed = (error: unknown): BudgetRead => {
    const metrics = this.metrics;
    if (isWrongType(error)) {
      this.consecutiveFailures = 0;
      metrics.breakerEvent('success');
      return { ok: false, reason: 'invalid_budget_data', detail: 'wrong_type' };
    }
    metrics.breakerEvent('fallback');
    const code = errorCode(error);
    const message = errorDetail(error);
    if (code === 'EOPENBREAKER') {
      // A read fired while the single half-open trial was still out.
      metrics.breakerEvent('reject');
      return BREAKER_OPEN_READ;
    }
    this.countFailure();
    // The client's command timeout and the breaker's timer (whichever bounds the read) mean the same.
    if (isTimeout(error)) {
      metrics.breakerEvent('timeout');
      return { ok: false, reason: 'timeout', detail: message };
    }
    metrics.breakerEvent('failure');
    return { ok: false, reason: 'redis_unavailable', detail: message };
  };

  /**
   * The breaker's second way to open, besides opossum's percentage window: a run of failed reads
   * with no success between them, at least `consecutiveFailuresToOpen` long and lasting
   * `failureStreakMs`. Under heavy traffic the window holds so many earlier successes that a
   * frozen Redis would never reach the percentage; this opens within a fraction of a second.
   */
  private countFailure(): void {
    const now = performance.now();
    if (this.consecutiveFailures === 0) this.failureStreakStartedAt = now;
    this.consecutiveFailures += 1;
    const o = this.options;
    if (this.consecutiveFailures >= o.consecutiveFailuresToOpen && now - this.failureStreakStartedAt >= o.failureStreakMs && this.breaker.closed) {
      this.breaker.open();
    }
  }

  /** The script with `args`, or (`hmget`) HMGET of the fields in `args`. */
  private call(key: string, args: readonly string[], hmget: boolean): Promise<Array<string | null>> {
    this.batching?.beforeRead(this.inFlight > 0);
    this.inFlight += 1;
    const client = this.client;
    let called: Promise<Array<string | null>>;
    if (hmget) called = client.hmget(key, ...args);
    else if (this.localCache) called = this.localCache.read(key, () => client.p28DecidePlan(key, ...args));
    else called = client.p28DecidePlan(key, ...args);
    return called.then(this.callSettled, this.callFailed);
  }

  private readonly callSettled = (values: Array<string | null>): Array<string | null> => {
    this.settled();
    return values;
  };

  private readonly callFailed = (error: unknown): never => {
    this.settled();
    throw error;
  };

  private settled(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0 && this.drained.length > 0) for (const resolve of this.drained.splice(0)) resolve();
  }
}
