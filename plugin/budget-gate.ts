import 'reflect-metadata';
import { Registry } from 'prom-client';
import { inject, injectable } from 'tsyringe';
import { RedisKeys } from '../lib/redis/keys';
import { silentLogger, type Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';
import { ServerClock, registerClockSkewGauge } from '../lib/redis/server-clock';
import type { ScriptCommands } from '../lib/redis/lua-scripts';
import { normalizeSymbol } from '../types/symbol';
import { PLAN_ID_MAX, readPermitRequest, type GateDecision, type PermitGate, type PermitRequest } from '../types/permit';
import {
  closingDecision,
  disabledDecision,
  errorDetail,
  failOpenDecision,
  invalidRequestDecision,
  isClosingRequest,
  unexpectedDecision,
  type DecisionPolicy,
} from './decide';
import { CacheFallback } from './cache-fallback';
import { DecisionLogHook } from './decision-log-hook';
import { DecisionReport } from './decision-report';
import { FirstConnection } from './first-connection';
import { clientEnded, gateClient } from './gate-client';
import { BREAKER_STATE, GateMetrics } from './gate-metrics';
import { decisionPolicyOf, resolveGateOptions, type BudgetGateOptions, type ResolvedGateOptions } from './gate-options';
import { RepeatBlocks } from './repeat-block';
import { GuardedRead, type BreakerStateName, type BudgetRead } from './guarded-read';
import { GateLocalCache } from './local-cache';
import { decisionFromPlanReply } from './plan-script';
import { BUDGET_GATE_OPTIONS } from './tokens';

export type { BreakerStateName, BudgetRead } from './guarded-read';

/**
 * The P2.8 budget gate of the Governor's permit pipeline.
 *
 * One decision costs at most one Redis round trip: one call of the decision script on the symbol's
 * budget hash (a single key, so it works on Redis Cluster), inside an opossum circuit breaker
 * (`GuardedRead`); while the breaker is open a decision is answered without a read and without
 * building an error. The gate composes its parts: the guarded read, the wait for the first
 * connection (`FirstConnection`), the local cache and its fallback (`CacheFallback`), the decision
 * log (`DecisionLogHook`) and its log lines (`DecisionReport`).
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
  private readonly metrics: GateMetrics;
  private readonly logger: Logger;
  private readonly policy: DecisionPolicy;
  private disabled: boolean;
  private closing: Promise<void> | undefined;
  /** The gate's log lines about fail-opens and blocks. */
  private readonly report: DecisionReport;
  /** The wait for the client's first connection: decisions taken meanwhile wait for it. */
  private readonly firstConnection: FirstConnection;
  /** The breaker-guarded call of the decision script. */
  private readonly reads: GuardedRead;
  /** Option `localCache`; undefined when off (or on a Cluster client). */
  private readonly localCache: GateLocalCache | undefined;
  /**
   * Symbols whose last decision was a block, confirmed with HMGET next time; undefined with a local
   * cache, which answers a repeated block without any round trip.
   */
  private readonly repeatBlocks: RepeatBlocks | undefined;
  /** Decisions from the local cache; undefined without one. */
  private readonly cacheFallback: CacheFallback | undefined;
  /** Option `decisionLogMaxLen`; undefined when 0 (off). */
  private readonly decisionLog: DecisionLogHook | undefined;
  /** Redis's clock, unless option `now` is given: ages are judged on it, never on this host's clock. */
  private readonly clock: ServerClock | undefined;
  private readonly now: () => number;

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

    this.report = new DecisionReport(this.logger);
    ({ client: this.client, owned: this.ownsClient } = gateClient(o, this.logger));

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

    const { client, keys, policy, now, registry, logger, metrics } = this;
    this.localCache = o.localCache ? GateLocalCache.create(client, { keys, registry, logger }) : undefined;
    this.decisionLog = DecisionLogHook.create(o, { client, keys, policy, now, registry, logger });
    this.cacheFallback = this.localCache ? new CacheFallback(this.localCache, keys, now, policy, this.decisionLog) : undefined;
    this.firstConnection = new FirstConnection(client, o.timeoutMs);
    // The local cache keeps every value of every reply; the log takes unchanged ones from a copy.
    const fields = this.localCache !== undefined ? 'all' : this.decisionLog !== undefined ? 'changed' : 'none';
    this.reads = new GuardedRead({ client, options: o, keys, metrics, logger, now, policy, localCache: this.localCache, fields });
    const { reads, decisionLog } = this;
    this.repeatBlocks = this.localCache
      ? undefined
      : new RepeatBlocks({ reads, now, policy, decisionLog, unreachable: (plan, failure) => this.unreachable(plan, failure), script: (plan) => this.decideFromRedis(plan) });
  }

  /**
   * Judges one permit request. Never throws; every outcome is a `GateDecision`. Requests that
   * close or reduce by themselves (`reduceOnly`, a close action) and requests while disabled are
   * answered without Redis. While the client makes its first connection a decision waits for it
   * (within `timeoutMs`); a client that is not ready after that fails open at once.
   */
  evaluate(req: PermitRequest): Promise<GateDecision> {
    const started = performance.now();
    // Read once, into an object of the gate's own: judged, and logged, as it was when asked, even
    // if the caller changes its object while the decision waits on Redis.
    const plan = readPermitRequest(req);
    let judged: GateDecision | Promise<GateDecision>;
    try {
      judged = this.judge(req, plan);
    } catch (error) {
      judged = unexpectedDecision(error);
    }
    if (judged instanceof Promise) {
      return judged.then(
        (decision) => this.finish(req, plan, decision, started),
        (error: unknown) => this.finish(req, plan, unexpectedDecision(error), started),
      );
    }
    return Promise.resolve(this.finish(req, plan, judged, started));
  }

  /**
   * Resolves once the gate can read budgets: its client has connected (at once if it already
   * had), or the gate was closed. It never rejects; a host may await it before taking traffic,
   * and decisions taken before it resolves wait for the first connection within `timeoutMs`.
   */
  ready(): Promise<void> {
    return this.firstConnection.ready();
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
    return this.reads.state;
  }

  /** Redis reads started and not yet settled (a read that timed out still settles later). */
  get pendingReads(): number {
    return this.reads.pending;
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
          this.logger.warn({ planId, symbol, err: errorDetail(error) }, 'budget gate could not release a reservation; it lapses on its own');
          resolve(false);
        },
      );
    });
  }

  /** tsyringe calls this from `container.dispose()`. */
  dispose(): Promise<void> {
    return this.close();
  }

  private judge(req: PermitRequest, plan: PermitRequest | undefined): GateDecision | Promise<GateDecision> {
    if (plan === undefined) return invalidRequestDecision(req);
    if (this.disabled) return disabledDecision();
    if (isClosingRequest(plan)) return closingDecision();
    if (this.closing) return failOpenDecision('redis_unavailable', 'gate_closed');
    if (this.cacheFallback) {
      const cached = this.cacheFallback.before(plan);
      if (cached !== undefined) return cached;
    }
    if (this.client.status !== 'ready') {
      if (this.firstConnection.waiting) return this.firstConnection.decide(() => this.decideFromRedis(plan));
      return this.unreachable(plan, failOpenDecision('redis_unavailable', `client_${this.client.status}`));
    }
    return this.decideFromRedis(plan);
  }

  /**
   * The Redis path: one call of the decision script (`decide-plan-1.lua`), which judges the plan
   * against the symbol's budget hash and reserves an allowed increase in the same atomic step. A
   * call answered without I/O (an open breaker) gives its decision without a promise.
   */
  private decideFromRedis(plan: PermitRequest): GateDecision | Promise<GateDecision> {
    if (this.repeatBlocks?.has(plan.symbol)) return this.repeatBlocks.decide(plan);
    const read = this.reads.read(plan);
    return read instanceof Promise ? read.then((settled) => this.decideFromRead(plan, settled)) : this.decideFromRead(plan, read);
  }

  private decideFromRead(plan: PermitRequest, read: BudgetRead): GateDecision {
    if (!read.ok) return this.unreachable(plan, failOpenDecision(read.reason, read.detail));
    const decision = decisionFromPlanReply(read.reply);
    decision.source = 'redis';
    this.repeatBlocks?.note(plan.symbol, decision);
    // The script appends the hash's known fields when asked (decision log, local cache).
    this.decisionLog?.noteReply(decision, read.reply, read.known);
    return decision;
  }

  /** Redis itself cannot be read: the local cache may still know the hash (`CacheFallback`). */
  private unreachable(plan: PermitRequest, failure: GateDecision): GateDecision {
    return this.cacheFallback ? this.cacheFallback.unreachable(plan, failure) : failure;
  }

  private finish(req: unknown, plan: PermitRequest | undefined, decision: GateDecision, started: number): GateDecision {
    decision.source ??= 'none';
    try {
      this.metrics.record(decision, (performance.now() - started) / 1000);
      this.report.note(req, decision);
      this.decisionLog?.append(plan, req, decision);
    } catch {
      // Metrics and logs must never turn a decision into an exception on the permit path.
    }
    return decision;
  }

  private async shutdown(): Promise<void> {
    this.firstConnection.end();
    this.reads.shutdown();
    this.clock?.stop();
    this.localCache?.close();
    const logged = this.decisionLog?.close(this.options.timeoutMs);
    const ended = this.ownsClient ? clientEnded(this.client) : undefined;
    if (this.ownsClient) this.client.disconnect();
    await Promise.all([this.reads.drain(this.options.timeoutMs * 2), ended, logged]);
  }
}
