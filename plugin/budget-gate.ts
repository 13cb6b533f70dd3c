import 'reflect-metadata';
import CircuitBreaker from 'opossum';
import { Registry } from 'prom-client';
import { inject, injectable } from 'tsyringe';
import { RedisKeys } from '../lib/redis/keys';
import { silentLogger, type Logger } from '../lib/logger';
import { createRedisClient, type RedisClient } from '../lib/redis/client';
import { isTimeout, isWrongType } from '../lib/redis/error-cause';
import { redisModeOf } from '../lib/redis/redis-modes';
import { ServerClock, registerClockSkewGauge } from '../lib/redis/server-clock';
import { withScripts, type ScriptCommands } from '../lib/redis/lua-scripts';
import { budgetFieldsFromValues } from '../types/budget-hash';
import { normalizeSymbol } from '../types/symbol';
import { PermitRequest, PLAN_ID_MAX, readPermitRequest, requestIdentity, type FailOpenReason, type GateDecision, type PermitGate } from '../types/permit';
import {
  closingDecision,
  decideFromBudgetFields,
  disabledDecision,
  failOpenDecision,
  failedFields,
  isClosingRequest,
  type DecisionPolicy,
} from './decide';
import { BREAKER_STATE, GateMetrics } from './gate-metrics';
import { decisionPolicyOf, resolveGateOptions, type BudgetGateOptions, type ResolvedGateOptions } from './gate-options';
import { GateLocalCache } from './local-cache';
import { decisionFromPlanReply, planScriptArgs, PLAN_REPLY_LENGTH } from './plan-script';
import { DecisionLog } from './decision-log';
import { noteDecisionInputs } from './decision-log-encoding';
import { BUDGET_GATE_OPTIONS } from './tokens';

/** What one guarded call of the decision script gave: its reply, or why there is none. */
export type BudgetRead =
  | { ok: true; reply: Array<string | null> }
  | { ok: false; reason: FailOpenReason; detail: string };

export type BreakerStateName = 'closed' | 'halfOpen' | 'open' | 'shutdown';

/** Causes that say Redis itself is unreachable or slow, as opposed to a problem with one hash. */
const REDIS_CAUSES: ReadonlySet<FailOpenReason> = new Set(['redis_unavailable', 'timeout', 'breaker_open']);

/** How long `close()` waits for its own connection to finish closing, in ms. */
const CLOSE_WAIT_MS = 1000;

/**
 * Client states of a first connection under way: a decision waits for it. Not `wait` (a lazy
 * client passed in, which connects only when a command is sent): nothing would end that wait.
 */
const FIRST_CONNECTION_STATES: ReadonlySet<string> = new Set(['connecting', 'connect']);

const BREAKER_OPEN_READ: BudgetRead = Object.freeze({ ok: false, reason: 'breaker_open', detail: 'breaker_open' });

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorCode(error: unknown): unknown {
  return error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
}

/** `invalid_request`, naming the fields the schema rejects; a request that throws when read names none. */
function invalidRequestDecision(req: unknown): GateDecision {
  try {
    // The schema names what is wrong; only invalid requests pay for it.
    const parsed = PermitRequest.safeParse(req);
    return failOpenDecision('invalid_request', parsed.success ? '(request)' : failedFields(parsed.error, '(request)'));
  } catch {
    return failOpenDecision('invalid_request', 'unreadable');
  }
}

/**
 * The P2.8 budget gate of the Governor's permit pipeline.
 *
 * One decision costs at most one Redis round trip: HMGET of the known fields of the symbol's
 * budget hash (a single key, so it works on Redis Cluster; a field the gate does not read never
 * crosses the wire), inside an opossum circuit breaker. The read is bounded by one timer: the
 * client's command timeout when it has one no longer than `timeoutMs` (the gate's own client
 * always does), else the breaker's. The breaker opens on its percentage window or on a run of
 * failed reads with no success between them (`consecutiveFailuresToOpen` reads lasting
 * `failureStreakMs`), and while it is open a decision is answered without a read and without
 * building an error.
 *
 * The judgement is made outside the breaker from the returned fields, so a block or bad data never
 * counts as a breaker failure, and no Redis failure can ever turn into a block: every way of not
 * knowing is a fail-open allow with its own reason. `evaluate` never throws and never waits much
 * longer than `timeoutMs`.
 */
@injectable()
export class BudgetGate implements PermitGate {
  readonly name = 'p28_budget';
  /** The registry the gate's metrics are on (the one passed in, else a private one). */
  readonly registry: Registry;

  private readonly options: ResolvedGateOptions;
  private readonly client: RedisClient & ScriptCommands;
  private readonly ownsClient: boolean;
  private readonly keys: RedisKeys;
  private readonly breaker: CircuitBreaker<[string, string[]], Array<string | null>>;
  private readonly metrics: GateMetrics;
  private readonly logger: Logger;
  private readonly policy: DecisionPolicy;
  private disabled: boolean;
  private closing: Promise<void> | undefined;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private lastFailOpen: FailOpenReason | null = null;
  private consecutiveFailures = 0;
  /** performance.now() of the first failure of the current run of failed reads. */
  private failureStreakStartedAt = 0;
  /** True while the client makes its first connection: decisions wait for it. */
  private firstConnection: boolean;
  /** Resolves at the first `ready` (or at close): `ready()`. */
  private readonly connected: Promise<void>;
  private markConnected: () => void = () => undefined;
  /** Resolves when the first connection attempt has ended, however (or at close). */
  private readonly firstAttemptEnded: Promise<void>;
  private endFirstAttempt: () => void = () => undefined;
  /** Option `localCache`; undefined when off (or on a Cluster client). */
  private readonly localCache: GateLocalCache | undefined;
  /** Option `decisionLogMaxLen`; undefined when 0 (off). */
  private readonly decisionLog: DecisionLog | undefined;
  /** Redis's clock, unless option `now` is given: ages are judged on it, never on this host's clock. */
  private readonly clock: ServerClock | undefined;
  private readonly now: () => number;

  private readonly onReconnected = (): void => {
    if (this.breaker.isShutdown || this.breaker.closed) return;
    this.logger.info({ breaker: this.breakerState }, 'redis connection ready again: budget gate breaker closed without waiting for resetTimeoutMs');
    this.breaker.close();
  };

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
    this.policy = decisionPolicyOf(o);

    if (o.redis) {
      this.client = withScripts(o.redis);
      this.ownsClient = false;
    } else {
      this.client = withScripts(createRedisClient({
        url: o.redisUrl as string,
        profile: 'gate',
        commandTimeoutMs: o.timeoutMs,
        connectionName: 'p28-budget-gate',
        autoPipelining: o.autoPipelining,
      }));
      this.ownsClient = true;
      // Connection errors surface as fail-open decisions; the listener only keeps ioredis from
      // reporting them as unhandled.
      this.client.on('error', (error: Error) => this.logger.debug({ err: error.message }, 'budget gate redis error'));
    }

    // Budget timestamps are written on Redis's clock; judging them on this host's would turn a host
    // clock a few seconds off into stale or from-the-future hashes, failing every plan open. The
    // offset is measured at each connection and every half minute, never per decision.
    if (options.now === undefined) {
      this.clock = new ServerClock(this.client);
      registerClockSkewGauge(this.registry, this.clock);
      this.clock.start();
      this.now = this.clock.now;
    } else {
      this.clock = undefined;
      this.now = o.now;
    }

    this.localCache = o.localCache ? GateLocalCache.create(this.client, { keys: this.keys, registry: this.registry, logger: this.logger }) : undefined;

    this.decisionLog =
      o.decisionLogMaxLen > 0
        ? new DecisionLog({ client: this.client, streamKey: this.keys.decisionLogStream, maxLen: o.decisionLogMaxLen, instanceId: o.instanceId, via: o.via, policy: this.policy, registry: this.registry, logger: this.logger })
        : undefined;

    this.firstConnection = FIRST_CONNECTION_STATES.has(this.client.status);
    this.connected = new Promise((resolve) => {
      this.markConnected = resolve;
    });
    this.firstAttemptEnded = new Promise((resolve) => {
      this.endFirstAttempt = resolve;
    });
    if (this.client.status === 'ready') this.markConnected();
    else this.watchFirstConnection();
    if (!this.firstConnection) this.endFirstAttempt();

    // One timer per read: the client's command timeout already bounds it when it is no longer
    // than timeoutMs, and a second timer in the breaker would only add its cost.
    const clientTimeout = redisModeOf(this.client).commandTimeoutMs(this.client);
    const clientBoundsRead = clientTimeout !== undefined && clientTimeout > 0 && clientTimeout <= o.timeoutMs;
    this.breaker = new CircuitBreaker((key: string, args: string[]) => this.readFields(key, args), {
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
      this.metrics.breakerEvent('open');
      this.metrics.setBreakerState(BREAKER_STATE.open);
      this.logger.warn({ resetTimeoutMs: o.resetTimeoutMs }, 'budget gate breaker opened: failing open without reading Redis');
    });
    this.breaker.on('halfOpen', () => {
      this.metrics.breakerEvent('halfOpen');
      this.metrics.setBreakerState(BREAKER_STATE.halfOpen);
    });
    // A new connection (ioredis reconnected: to the new master after a Sentinel failover, to a
    // restarted server) is news the open breaker cannot have: the cause it opened on may be gone.
    // Waiting out resetTimeoutMs would fail every decision open for seconds after Redis is back;
    // the breaker is closed at once instead, and a run of failures opens it again within
    // failureStreakMs if the new connection fails too.
    this.client.on('ready', this.onReconnected);
    this.breaker.on('close', () => {
      this.consecutiveFailures = 0;
      this.metrics.breakerEvent('close');
      this.metrics.setBreakerState(BREAKER_STATE.closed);
      this.logger.info('budget gate breaker closed: reading Redis again');
    });
  }

  /**
   * Judges one permit request. Never throws; every outcome is a `GateDecision`. Requests that
   * close or reduce by themselves (`reduceOnly`, a close action) and requests while disabled are
   * answered without Redis. While the client makes its first connection a decision waits for it
   * (within `timeoutMs`); a client that is not ready after that fails open at once.
   */
  evaluate(req: PermitRequest): Promise<GateDecision> {
    const started = performance.now();
    let judged: GateDecision | Promise<GateDecision>;
    try {
      judged = this.judge(req);
    } catch (error) {
      judged = unexpected(error);
    }
    if (judged instanceof Promise) {
      return judged.then(
        (decision) => this.finish(req, decision, started),
        (error: unknown) => this.finish(req, unexpected(error), started),
      );
    }
    return Promise.resolve(this.finish(req, judged, started));
  }

  /**
   * Resolves once the gate can read budgets: its client has connected (at once if it already
   * had), or the gate was closed. It never rejects; a host may await it before taking traffic,
   * and decisions taken before it resolves wait for the first connection within `timeoutMs`.
   */
  ready(): Promise<void> {
    return this.connected;
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

  /**
   * Releases the reservation of `planId` on `symbol` at once (a plan blocked by a later gate,
   * cancelled, or filled), instead of letting it lapse after `reservationTtlMs`: one script call
   * on the symbol's budget hash (`release-reservation-1.lua`), bounded by `timeoutMs`. Never rejects: resolves true
   * when a reservation was removed, false when there was none, the input was invalid, or Redis
   * could not be reached (the reservation then lapses on its own).
   */
  release(planId: string, symbol: string): Promise<boolean> {
    const key = normalizeSymbol(symbol);
    if (typeof planId !== 'string' || planId.length === 0 || planId.length > PLAN_ID_MAX || key === undefined || this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.options.timeoutMs);
      this.client.p28ReleaseReservation(this.keys.budget(key), planId).then(
        (removed) => {
          clearTimeout(timer);
          resolve(removed > 0);
        },
        (error: unknown) => {
          clearTimeout(timer);
          this.logger.warn({ planId, symbol, err: messageOf(error) }, 'budget gate could not release a reservation; it lapses on its own');
          resolve(false);
        },
      );
    });
  }

  /** tsyringe calls this from `container.dispose()`. */
  dispose(): Promise<void> {
    return this.close();
  }

  private judge(req: PermitRequest): GateDecision | Promise<GateDecision> {
    const plan = readPermitRequest(req);
    if (plan === undefined) return invalidRequestDecision(req);
    if (this.disabled) return disabledDecision();
    if (isClosingRequest(plan)) return closingDecision();
    if (this.closing) return failOpenDecision('redis_unavailable', 'gate_closed');
    if (this.localCache) {
      const cached = this.localCache.lookup(this.keys.budget(plan.symbol));
      // A cached allow is never final: the plan must reserve its increase, and other plans'
      // reservations may have used the headroom since. Every other cached decision stands.
      if (cached !== undefined) {
        const decision = this.fromCache(plan, cached);
        if (decision.reason !== 'within_budget') return decision;
      }
    }
    if (this.client.status !== 'ready') {
      if (this.firstConnection) return this.decideOnceConnected(plan);
      return this.unreachable(plan, failOpenDecision('redis_unavailable', `client_${this.client.status}`));
    }
    return this.decideFromRedis(plan);
  }

  // --- local cache (option `localCache`) ---

  private fromCache(plan: PermitRequest, fields: Record<string, string>): GateDecision {
    const decision = decideFromBudgetFields(plan, fields, this.now(), this.policy);
    decision.source = 'cache';
    if (this.decisionLog) noteDecisionInputs(decision, fields);
    return decision;
  }

  /**
   * When Redis itself cannot be read, a cached hash still within `staleAfterMs` keeps being
   * enforced; a stale, invalid or missing one leaves the Redis failure as the decision.
   */
  private unreachable(plan: PermitRequest, failure: GateDecision): GateDecision {
    if (this.localCache === undefined || !REDIS_CAUSES.has(failure.reason as FailOpenReason)) return failure;
    const fields = this.localCache.lastKnown(this.keys.budget(plan.symbol));
    if (fields === undefined) return failure;
    const decision = this.fromCache(plan, fields);
    return decision.failOpen ? failure : decision;
  }

  /**
   * The Redis path: one call of the decision script (`decide-plan-1.lua`), which judges the plan
   * against the symbol's budget hash and reserves an allowed increase in the same atomic step. A
   * call answered without I/O (an open breaker) gives its decision without a promise.
   */
  private decideFromRedis(plan: PermitRequest): GateDecision | Promise<GateDecision> {
    const read = this.readBudgetFields(plan);
    return read instanceof Promise ? read.then((settled) => this.decideFromRead(plan, settled)) : this.decideFromRead(plan, read);
  }

  private decideFromRead(plan: PermitRequest, read: BudgetRead): GateDecision {
    if (!read.ok) return this.unreachable(plan, failOpenDecision(read.reason, read.detail));
    const decision = decisionFromPlanReply(read.reply);
    decision.source = 'redis';
    // The script appends the hash's known fields when asked (decision log, local cache).
    if (this.decisionLog && read.reply.length > PLAN_REPLY_LENGTH) noteDecisionInputs(decision, budgetFieldsFromValues(read.reply.slice(PLAN_REPLY_LENGTH)));
    return decision;
  }

  /**
   * One guarded call of the decision script for a symbol: never rejects. While the breaker lets
   * nothing through it answers `breaker_open` at once, without a call and without the error
   * opossum would build for a rejected call.
   */
  private readBudgetFields(plan: PermitRequest): BudgetRead | Promise<BudgetRead> {
    const breaker = this.breaker;
    if (!breaker.closed && !breaker.pendingClose) {
      this.metrics.breakerEvent('reject');
      this.metrics.breakerEvent('fallback');
      return BREAKER_OPEN_READ;
    }
    // The script's arguments are built only for a call that is made: an open breaker answers without them.
    const withFields = this.localCache !== undefined || this.decisionLog !== undefined;
    const args = planScriptArgs(plan, this.now(), this.policy, this.options.reservationTtlMs, withFields);
    return breaker.fire(this.keys.budget(plan.symbol), args).then(
      (reply) => this.readSucceeded(reply),
      (error: unknown) => this.readFailed(error),
    );
  }

  private readSucceeded(reply: Array<string | null>): BudgetRead {
    this.consecutiveFailures = 0;
    this.metrics.breakerEvent('success');
    return { ok: true, reply };
  }

  private readFailed(error: unknown): BudgetRead {
    if (isWrongType(error)) {
      this.consecutiveFailures = 0;
      this.metrics.breakerEvent('success');
      return { ok: false, reason: 'invalid_budget_data', detail: 'wrong_type' };
    }
    this.metrics.breakerEvent('fallback');
    const code = errorCode(error);
    const message = messageOf(error);
    if (code === 'EOPENBREAKER') {
      // A read fired while the single half-open trial was still out.
      this.metrics.breakerEvent('reject');
      return BREAKER_OPEN_READ;
    }
    this.countFailure();
    // The client's command timeout and the breaker's timer (whichever bounds the read) mean the same.
    if (isTimeout(error)) {
      this.metrics.breakerEvent('timeout');
      return { ok: false, reason: 'timeout', detail: message };
    }
    this.metrics.breakerEvent('failure');
    return { ok: false, reason: 'redis_unavailable', detail: message };
  }

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

  private readFields(key: string, args: string[]): Promise<Array<string | null>> {
    this.inFlight += 1;
    const read = () => this.client.p28DecidePlan(key, ...args);
    return (this.localCache ? this.localCache.read(key, read) : read()).then(
      (values) => {
        this.settled();
        return values;
      },
      (error: unknown) => {
        this.settled();
        throw error;
      },
    );
  }

  private settled(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0 && this.drained.length > 0) for (const resolve of this.drained.splice(0)) resolve();
  }

  /**
   * A decision taken while the client makes its first connection: it waits for the connection
   * and reads, all within `timeoutMs` from here (one timer for both).
   */
  private decideOnceConnected(plan: PermitRequest): Promise<GateDecision> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const status = this.client.status;
        resolve(status === 'ready' ? failOpenDecision('timeout', 'first_connection') : failOpenDecision('redis_unavailable', `client_${status}`));
      }, this.options.timeoutMs);
      this.firstAttemptEnded
        .then(() => {
          if (this.closing) return failOpenDecision('redis_unavailable', 'gate_closed');
          if (this.client.status !== 'ready') return failOpenDecision('redis_unavailable', `client_${this.client.status}`);
          return this.decideFromRedis(plan);
        })
        .catch(unexpected)
        .then((decision) => {
          clearTimeout(timer);
          resolve(decision);
        });
    });
  }

  /**
   * Ends the first-connection wait: at the first `ready`, or when the first attempt fails (a
   * Redis that is down at start is then failed open at once, as it is later).
   */
  private watchFirstConnection(): void {
    const done = () => {
      this.firstConnection = false;
      this.endFirstAttempt();
      this.client.off('ready', onReady);
      this.client.off('error', onFailed);
      this.client.off('end', onFailed);
    };
    const onReady = () => {
      done();
      this.markConnected();
    };
    const onFailed = () => done();
    this.client.on('ready', onReady);
    this.client.on('error', onFailed);
    this.client.on('end', onFailed);
    // A later connection (after a failed first attempt) still resolves ready().
    this.client.once('ready', () => this.markConnected());
  }

  private finish(req: unknown, decision: GateDecision, started: number): GateDecision {
    decision.source ??= 'none';
    try {
      this.metrics.record(decision, (performance.now() - started) / 1000);
      // Only fail-opens, blocks, shadow blocks and the first decision after a fail-open are logged.
      if (decision.failOpen || decision.wouldBlock || this.lastFailOpen !== null) this.report(req, decision);
      this.decisionLog?.append(req, decision, this.now(), this.policy.forceShadow);
    } catch {
      // Metrics and logs must never turn a decision into an exception on the permit path.
    }
    return decision;
  }

  private report(req: unknown, decision: GateDecision): void {
    if (decision.failOpen) {
      if (decision.reason === this.lastFailOpen) return;
      this.logger.warn(
        { ...requestIdentity(req), ...decision, previous: this.lastFailOpen },
        `budget gate failing open: ${decision.reason}`,
      );
      this.lastFailOpen = decision.reason as FailOpenReason;
      return;
    }
    if (this.lastFailOpen !== null && decision.mode !== null && REDIS_CAUSES.has(this.lastFailOpen)) {
      this.logger.info({ ...requestIdentity(req), previous: this.lastFailOpen }, 'budget gate reading budgets again');
      this.lastFailOpen = null;
    }
    // Blocks are logged one by one; the level check keeps the hot path free of the log object's
    // allocation when the host has turned these lines off.
    if (!decision.allow) {
      if (this.logger.isLevelEnabled('warn')) this.logger.warn({ ...requestIdentity(req), ...decision }, 'budget gate blocked a plan');
    } else if (decision.wouldBlock && this.logger.isLevelEnabled('info')) {
      this.logger.info({ ...requestIdentity(req), ...decision }, 'budget gate would block a plan (shadow)');
    }
  }

  private async shutdown(): Promise<void> {
    this.firstConnection = false;
    this.endFirstAttempt();
    this.markConnected();
    this.breaker.shutdown();
    this.client.off('ready', this.onReconnected);
    this.clock?.stop();
    this.localCache?.close();
    const logged = this.decisionLog?.close(this.options.timeoutMs);
    const ended = this.ownsClient ? this.clientEnded() : undefined;
    if (this.ownsClient) this.client.disconnect();
    await Promise.all([this.drain(), ended, logged]);
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

/** Not reachable by design (reads never reject); an unforeseen error still ends in a fail-open allow. */
function unexpected(error: unknown): GateDecision {
  return failOpenDecision('redis_unavailable', `unexpected: ${messageOf(error)}`);
}
