import 'reflect-metadata';
import type { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { Registry } from 'prom-client';
import { inject, injectable } from 'tsyringe';
import { RedisKeys } from '../lib/redis/keys';
import { silentLogger, type Logger } from '../lib/logger';
import { createRedisClient, type RedisClient } from '../lib/redis/client';
import { PermitRequest, readPermitRequest, type FailOpenReason, type GateDecision, type PermitGate } from '../types/permit';
import {
  closingDecision,
  decideFromBudgetFields,
  disabledDecision,
  failOpenDecision,
  failedFields,
  isClosingRequest,
  type DecisionPolicy,
} from './decide';
import { BREAKER_EVENTS, BREAKER_STATE, GateMetrics } from './gate-metrics';
import { resolveGateOptions, type BudgetGateOptions, type ResolvedGateOptions } from './gate-options';
import { GateLocalCache } from './local-cache';
import { BUDGET_GATE_OPTIONS } from './tokens';

/** What one guarded read of a budget hash gave: the fields, or why there are none. */
type BudgetRead =
  | { ok: true; fields: Record<string, string> }
  | { ok: false; reason: FailOpenReason; detail: string };

export type BreakerStateName = 'closed' | 'halfOpen' | 'open' | 'shutdown';

/** Causes that say Redis itself is unreachable or slow, as opposed to a problem with one hash. */
const REDIS_CAUSES: ReadonlySet<FailOpenReason> = new Set(['redis_unavailable', 'timeout', 'breaker_open']);

/** How long `close()` waits for its own connection to finish closing, in ms. */
const CLOSE_WAIT_MS = 1000;

/**
 * A key that holds something other than a hash: Redis answered, so this is bad data, not an
 * unavailable Redis. The breaker's `errorFilter` keeps it out of the failure statistics.
 */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorCode(error: unknown): unknown {
  return error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
}

/** planId and symbol of any value, cut short, for logs about requests that may be malformed. */
function planIdentity(req: unknown): { planId?: string; symbol?: string } {
  if (typeof req !== 'object' || req === null) return {};
  const { planId, symbol } = req as { planId?: unknown; symbol?: unknown };
  return {
    planId: typeof planId === 'string' ? planId.slice(0, 200) : undefined,
    symbol: typeof symbol === 'string' ? symbol.slice(0, 40) : undefined,
  };
}

/**
 * The P2.8 budget gate of the Governor's permit pipeline.
 *
 * One decision costs at most one Redis round trip: HGETALL of the symbol's budget hash (a single
 * key, so it works on Redis Cluster), inside a circuit breaker with `timeoutMs`. The judgement is
 * made outside the breaker from the returned hash, so a block or bad data never counts as a
 * breaker failure, and no Redis failure can ever turn into a block: every way of not knowing is a
 * fail-open allow with its own reason. `evaluate` never throws and never waits much longer than
 * `timeoutMs`.
 */
@injectable()
export class BudgetGate implements PermitGate {
  readonly name = 'p28_budget';
  /** The registry the gate's metrics are on (the one passed in, else a private one). */
  readonly registry: Registry;

  private readonly options: ResolvedGateOptions;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly keys: RedisKeys;
  private readonly breaker: CircuitBreaker<[string], BudgetRead>;
  private readonly metrics: GateMetrics;
  private readonly logger: Logger;
  private readonly policy: DecisionPolicy;
  private disabled: boolean;
  private closing: Promise<void> | undefined;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private lastFailOpen: FailOpenReason | null = null;
  /** Option `localCache`; undefined when off (or on a Cluster client). */
  private readonly localCache: GateLocalCache | undefined;

  /** Throws `GateOptionsError` when the options are unusable (a start-up error, never a decision). */
  constructor(@inject(BUDGET_GATE_OPTIONS) options: BudgetGateOptions) {
    this.options = resolveGateOptions(options);
    const o = this.options;
    this.logger = (o.logger ?? silentLogger).child({ gate: this.name });
    this.keys = new RedisKeys(o.keyPrefix);
    this.registry = o.registry ?? new Registry();
    this.metrics = new GateMetrics(this.registry);
    this.metrics.setBreakerState(BREAKER_STATE.closed);
    this.disabled = o.disabled;
    this.policy = {
      staleAfterMs: o.staleAfterMs,
      violationWindowMs: o.violationWindowMs,
      maxClockSkewMs: o.maxClockSkewMs,
      forceShadow: o.forceShadow,
    };

    if (o.redis) {
      this.client = o.redis;
      this.ownsClient = false;
    } else {
      this.client = createRedisClient({
        url: o.redisUrl as string,
        profile: 'gate',
        commandTimeoutMs: o.timeoutMs,
        connectionName: 'p28-budget-gate',
      });
      this.ownsClient = true;
      // Connection errors surface as fail-open decisions; the listener only keeps ioredis from
      // reporting them as unhandled.
      this.client.on('error', (error: Error) => this.logger.debug({ err: error.message }, 'budget gate redis error'));
    }

    this.localCache = o.localCache ? GateLocalCache.create(this.client, { keys: this.keys, registry: this.registry, logger: this.logger }) : undefined;

    this.breaker = new CircuitBreaker((key: string) => this.readBudget(key), {
      name: 'p28_budget_gate',
      timeout: o.timeoutMs,
      errorThresholdPercentage: o.errorThresholdPercentage,
      resetTimeout: o.resetTimeoutMs,
      volumeThreshold: o.volumeThreshold,
      rollingCountTimeout: o.rollingCountTimeoutMs,
      rollingCountBuckets: o.rollingCountBuckets,
      errorFilter: isWrongType,
      // The gate keeps its own latency histogram; no percentile work or snapshot timer per breaker.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    // opossum passes the fire arguments, then the error: a timeout, an open breaker (fired while
    // open or during the single half-open trial) or a failed command.
    this.breaker.fallback((_key: string, error: unknown) => this.unreadable(error));
    for (const event of BREAKER_EVENTS) (this.breaker as EventEmitter).on(event, () => this.metrics.breakerEvent(event));
    this.breaker.on('open', () => {
      this.metrics.setBreakerState(BREAKER_STATE.open);
      this.logger.warn({ resetTimeoutMs: o.resetTimeoutMs }, 'budget gate breaker opened: failing open without reading Redis');
    });
    this.breaker.on('halfOpen', () => this.metrics.setBreakerState(BREAKER_STATE.halfOpen));
    this.breaker.on('close', () => {
      this.metrics.setBreakerState(BREAKER_STATE.closed);
      this.logger.info('budget gate breaker closed: reading Redis again');
    });
  }

  /**
   * Judges one permit request. Never throws; every outcome is a `GateDecision`. Requests that
   * close or reduce by themselves (`reduceOnly`, a close action) and requests while disabled are
   * answered without Redis; a client that is not ready fails open at once.
   */
  async evaluate(req: PermitRequest): Promise<GateDecision> {
    const started = performance.now();
    let decision: GateDecision;
    try {
      decision = await this.judge(req);
    } catch (error) {
      // Not reachable by design (reads resolve through the fallback); kept so that an
      // unforeseen error still ends in a fail-open allow rather than an exception.
      decision = failOpenDecision('redis_unavailable', `unexpected: ${messageOf(error)}`);
    }
    decision.source ??= 'none';
    try {
      this.metrics.record(decision, (performance.now() - started) / 1000);
      this.report(req, decision);
    } catch {
      // Metrics and logs must never turn a decision into an exception on the permit path.
    }
    return decision;
  }

  /** Emergency switch: while on, every plan is allowed with `gate_disabled` and Redis is not read. */
  setDisabled(disabled: boolean): void {
    if (this.disabled === disabled) return;
    this.disabled = disabled;
    this.logger.warn({ disabled }, disabled ? 'budget gate disabled: allowing every plan' : 'budget gate enabled');
  }

  /** Emergency switch: while on, every hash is treated as `mode=shadow`, so nothing is blocked. */
  setForceShadow(forceShadow: boolean): void {
    if (this.policy.forceShadow === forceShadow) return;
    this.policy.forceShadow = forceShadow;
    this.logger.warn({ forceShadow }, forceShadow ? 'budget gate forced to shadow: never blocking' : 'budget gate follows the mode in each hash again');
  }

  get isDisabled(): boolean {
    return this.disabled;
  }

  get isForceShadow(): boolean {
    return this.policy.forceShadow;
  }

  get breakerState(): BreakerStateName {
    if (this.breaker.isShutdown) return 'shutdown';
    if (this.breaker.halfOpen) return 'halfOpen';
    if (this.breaker.opened) return 'open';
    return 'closed';
  }

  /** Redis reads started and not yet settled (a read that timed out still settles later). */
  get pendingReads(): number {
    return this.inFlight;
  }

  /**
   * Stops the breaker and its timers, closes the connection the gate created itself (a client
   * passed in stays open), and resolves once reads in flight have settled (waiting at most about
   * `timeoutMs`). Later decisions fail open with `redis_unavailable`. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** tsyringe calls this from `container.dispose()`. */
  dispose(): Promise<void> {
    return this.close();
  }

  private async judge(req: PermitRequest): Promise<GateDecision> {
    const plan = readPermitRequest(req);
    if (plan === undefined) {
      // The schema names what is wrong; only invalid requests pay for it.
      const parsed = PermitRequest.safeParse(req);
      return failOpenDecision('invalid_request', parsed.success ? '(request)' : failedFields(parsed.error, '(request)'));
    }
    if (this.disabled) return disabledDecision();
    if (isClosingRequest(plan)) return closingDecision();
    if (this.closing) return failOpenDecision('redis_unavailable', 'gate_closed');
    const key = this.keys.budget(plan.symbol);
    const cached = this.localCache?.lookup(key);
    if (cached !== undefined) return this.fromCache(plan, cached);
    if (this.client.status !== 'ready') return this.unreachable(plan, key, failOpenDecision('redis_unavailable', `client_${this.client.status}`));

    let read: BudgetRead;
    try {
      read = await this.breaker.fire(key);
    } catch (error) {
      read = isWrongType(error)
        ? { ok: false, reason: 'invalid_budget_data', detail: 'wrong_type' }
        : { ok: false, reason: 'redis_unavailable', detail: messageOf(error) };
    }
    if (!read.ok) return this.unreachable(plan, key, failOpenDecision(read.reason, read.detail));
    const decision = decideFromBudgetFields(plan, read.fields, this.options.now(), this.policy);
    decision.source = 'redis';
    return decision;
  }

  // --- local cache (option `localCache`) ---

  private fromCache(plan: PermitRequest, fields: Record<string, string>): GateDecision {
    const decision = decideFromBudgetFields(plan, fields, this.options.now(), this.policy);
    decision.source = 'cache';
    return decision;
  }

  /**
   * When Redis itself cannot be read, a cached hash still within `staleAfterMs` keeps being
   * enforced; a stale, invalid or missing one leaves the Redis failure as the decision.
   */
  private unreachable(plan: PermitRequest, key: string, failure: GateDecision): GateDecision {
    if (this.localCache === undefined || !REDIS_CAUSES.has(failure.reason as FailOpenReason)) return failure;
    const fields = this.localCache.lastKnown(key);
    if (fields === undefined) return failure;
    const decision = this.fromCache(plan, fields);
    return decision.failOpen ? failure : decision;
  }

  private readBudget(key: string): Promise<BudgetRead> {
    const reply = this.localCache ? this.localCache.read(key, () => this.client.hgetall(key)) : this.client.hgetall(key);
    this.inFlight += 1;
    return reply
      .then((fields): BudgetRead => ({ ok: true, fields }))
      .finally(() => {
        this.inFlight -= 1;
        if (this.inFlight === 0 && this.drained.length > 0) for (const resolve of this.drained.splice(0)) resolve();
      });
  }

  private unreadable(error: unknown): BudgetRead {
    const code = errorCode(error);
    const message = messageOf(error);
    if (code === 'EOPENBREAKER') return { ok: false, reason: 'breaker_open', detail: 'breaker_open' };
    // The breaker's own timer and the client's command timeout are set to the same length;
    // whichever fires first, the cause is the same.
    if (code === 'ETIMEDOUT' || message === 'Command timed out') return { ok: false, reason: 'timeout', detail: message };
    return { ok: false, reason: 'redis_unavailable', detail: message };
  }

  private report(req: unknown, decision: GateDecision): void {
    if (decision.failOpen) {
      if (decision.reason === this.lastFailOpen) return;
      this.logger.warn(
        { ...planIdentity(req), ...decision, previous: this.lastFailOpen },
        `budget gate failing open: ${decision.reason}`,
      );
      this.lastFailOpen = decision.reason as FailOpenReason;
      return;
    }
    if (this.lastFailOpen !== null && decision.mode !== null && REDIS_CAUSES.has(this.lastFailOpen)) {
      this.logger.info({ ...planIdentity(req), previous: this.lastFailOpen }, 'budget gate reading budgets again');
      this.lastFailOpen = null;
    }
    // Blocks are logged one by one; the level check keeps the hot path free of the log object's
    // allocation when the host has turned these lines off.
    if (!decision.allow) {
      if (this.logger.isLevelEnabled('warn')) this.logger.warn({ ...planIdentity(req), ...decision }, 'budget gate blocked a plan');
    } else if (decision.wouldBlock && this.logger.isLevelEnabled('info')) {
      this.logger.info({ ...planIdentity(req), ...decision }, 'budget gate would block a plan (shadow)');
    }
  }

  private async shutdown(): Promise<void> {
    this.breaker.shutdown();
    this.localCache?.close();
    const ended = this.ownsClient ? this.clientEnded() : undefined;
    if (this.ownsClient) this.client.disconnect();
    await Promise.all([this.drain(), ended]);
  }

  private drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.drained = this.drained.filter((waiter) => waiter !== done);
        resolve();
      };
      const timer = setTimeout(done, this.options.timeoutMs * 2);
      this.drained.push(done);
    });
  }

  /**
   * Waits for the client's `end` while it has a connection to close. A client that was
   * reconnecting has none, and ioredis emits no `end` for it: nothing to wait for.
   */
  private clientEnded(): Promise<void> {
    if (!['connecting', 'connect', 'ready'].includes(this.client.status)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.off('end', done);
        resolve();
      };
      const timer = setTimeout(done, CLOSE_WAIT_MS);
      this.client.once('end', done);
    });
  }
}
