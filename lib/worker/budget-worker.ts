import { performance } from 'node:perf_hooks';
import type { Mode } from '../../types/mode';
import type { PortfolioStateHash } from '../../types/inputs';
import { encodeWorkerHeartbeat, type WorkerHeartbeat } from '../../types/worker-heartbeat';
import { computeBudgets, type BudgetWrite, type SymbolInputs } from '../engine/budget-record';
import { symbolUniverse } from '../engine/symbol-universe';
import { ViolationCadence, type Announcement } from '../engine/violation-cadence';
import type { ViolationEvent } from '../../types/violation-event';
import { BudgetWriter, type WriteFailure } from './budget-writer';
import { execBatch, type RedisCommand } from '../redis/command-batch';
import { FENCED_WRITE, execFencedBatch, fencedWriteCommand } from '../redis/fenced-write';
import type { WorkerConfig } from '../config';
import { HeatSource, type HeatReader, type HeatReading } from './sources/heat-source';
import { RedisKeys } from '../redis/keys';
import { LeaderLease } from './leader-lease';
import { silentLogger, type Logger } from '../logger';
import { ModeSwitch, type ModeDecision, type ModeSource } from './mode-switch';
import { PortfolioReader, type CycleHead, type SymbolsRead } from './input-reader';
import type { InputProblem } from './sources/input-problem';
import type { WorkerHealthFacts } from './health';
import { PortfolioStateTracker, type PortfolioSource } from '../engine/portfolio-state';
import type { RedisClient } from '../redis/client';
import { redisErrorCause } from '../redis/error-cause';
import { CauseLog } from '../cause-log';
import { WorkerMetrics } from './worker-metrics';
import type { CycleReport, StaleInputType, WorkerRole } from './cycle-report';
import type { ServerClock } from '../redis/server-clock';
import { HeartbeatCheck } from './heartbeat-check';
import { KeyProblems } from './key-problems';
import { yieldToEventLoop } from './event-loop-slices';
import { CycleHistory, cycleHistoryWriteFailures } from './cycle-history';


export interface BudgetWorkerOptions {
  config: WorkerConfig;
  /** A connected (or connecting) client with the `worker` profile. */
  redis: RedisClient;
  /** Default: a fresh `WorkerMetrics` with its own registry. */
  metrics?: WorkerMetrics;
  /** Default: silent. */
  logger?: Logger;
  /** Default: `HeatSource` on HEAT_GATE_METRICS_URL. */
  heatSource?: HeatReader;
  /** Wall clock in epoch ms for timestamps, staleness and last-known-good ages (default `Date.now`). */
  now?: () => number;
  /** Default: COUNT hint of the snapshot SCAN, see `PORTFOLIO_READER_DEFAULTS`. */
  scanCount?: number;
  /**
   * Redis's clock: measured once per cycle, it stamps every write and judges every age (the default
   * for `now`). Without it and without `now`, the host clock.
   */
  clock?: ServerClock;
}

const announcementOf = (v: ViolationEvent): Announcement => ({ overBudgetUsd: v.over_budget, budgetUsd: v.budget_usd, mode: v.mode });

/** A Redis failure that ended a cycle (as opposed to a programming error). */
class RedisStepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'RedisStepError';
  }
}

/** Symbols per slice of the budget computation: a few milliseconds of CPU, then the event loop's turn. */
const COMPUTE_SLICE_SYMBOLS = 500;

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function redisStep<T>(step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new RedisStepError(step, error);
  }
}

/**
 * The budget worker: every BUDGET_COMPUTE_INTERVAL_SEC, the replica holding the lease reads the
 * portfolio state, the position snapshots, heat, cluster stress and vol regimes, computes every
 * symbol's budget and writes the budget hashes (with their TTL) and violation events. Other replicas
 * stand by and take the lease over when the leader stops renewing it.
 *
 * `runOnce()` never rejects: a failing cycle is reported, logged and counted, and the loop started by
 * `start()` goes on. Cycles never overlap.
 */
export class BudgetWorker {
  readonly metrics: WorkerMetrics;
  readonly lease: LeaderLease;
  private readonly config: WorkerConfig;
  private readonly client: RedisClient;
  private readonly keys: RedisKeys;
  private readonly logger: Logger;
  private readonly heat: HeatReader;
  private readonly now: () => number;
  private readonly clock: ServerClock | undefined;
  private readonly heartbeatCheck: HeartbeatCheck;
  private readonly keyProblems: KeyProblems;
  private readonly modeSwitch: ModeSwitch;
  private readonly reader: PortfolioReader;
  private readonly portfolioState: PortfolioStateTracker;
  private readonly writer: BudgetWriter;

  private inFlight: Promise<CycleReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private looping = false;
  private lastReport: CycleReport | undefined;
  private lastSuccessAt: number | undefined;
  /** Failed cycles, logged once per cause. */
  private readonly failureLog: CauseLog;
  /** Fallbacks of the portfolio state, logged once per cause. */
  private readonly portfolioLog: CauseLog;
  /** Unknown positions (stale, an incomplete feed, invalid numbers), logged once per change. */
  private readonly positionsLog: CauseLog;
  /** Input keys named in another case (`btcusdt`), logged once per change of the set. */
  private readonly caseFoldedLog: CauseLog;
  private lastPositions: CycleReport['positions'];
  private readonly cadence: ViolationCadence;
  private readonly createdAt: number;
  private modeSource: ModeSource = 'env';
  private startOverrideCleared = false;
  /** Symbols past P28_MAX_SYMBOLS in the last leader cycle, to log only when that changes. */
  private lastOverCap = 0;
  /** Epoch ms of the latest heartbeat seen: when any replica last wrote budgets. */
  private budgetsWrittenAt: number | undefined;
  private failedInARow = 0;
  private lastError: string | undefined;
  private lastCause: string | undefined;
  private cycleStartedPerf = 0;
  private readonly history: CycleHistory;

  constructor(options: BudgetWorkerOptions) {
    const { config } = options;
    this.config = config;
    this.client = options.redis;
    this.keys = new RedisKeys(config.keyPrefix, config.inputFamilies);
    this.logger = options.logger ?? silentLogger;
    this.failureLog = new CauseLog(this.logger);
    this.portfolioLog = new CauseLog(this.logger);
    this.positionsLog = new CauseLog(this.logger);
    this.caseFoldedLog = new CauseLog(this.logger);
    this.metrics = options.metrics ?? new WorkerMetrics();
    this.clock = options.clock;
    this.now = options.now ?? this.clock?.now ?? (() => Date.now());
    this.keyProblems = new KeyProblems(this.metrics.registry, this.logger);
    this.heartbeatCheck = new HeartbeatCheck({ now: this.now, problems: this.keyProblems, key: this.keys.workerHeartbeat });
    this.heat =
      options.heatSource ??
      new HeatSource({
        url: config.heatGateMetricsUrl,
        timeoutMs: config.heatFetchTimeoutMs,
        maxBytes: config.heatMaxBytes,
        maxLkgAgeSec: config.maxLkgAgeSec,
        now: this.now,
        logger: this.logger,
      });
    this.modeSwitch = new ModeSwitch({
      configuredMode: config.mode,
      enforceSymbols: config.enforceSymbols,
      instanceId: config.instanceId,
      logger: this.logger,
    });
    this.reader = new PortfolioReader({
      client: this.client,
      keys: this.keys,
      scanCount: options.scanCount,
      positionStaleSec: config.positionStaleSec,
      marketStateStaleSec: config.marketStateStaleSec,
      maxLkgAgeSec: config.maxLkgAgeSec,
      positionsFeedTolerancePct: config.positionsFeedTolerancePct,
    });
    this.portfolioState = new PortfolioStateTracker({ staleSec: config.staleSec, maxLkgAgeSec: config.maxLkgAgeSec });
    this.writer = new BudgetWriter({
      client: this.client,
      keys: this.keys,
      ttlSec: config.budgetHashTtlSec,
      violationStreamMaxLen: config.violationStreamMaxLen,
      leaseTerm: () => this.lease.term,
      fence: () => this.lease.fence,
    });
    this.lease = new LeaderLease(this.client, {
      key: this.keys.workerLease,
      instanceId: config.instanceId,
      ttlMs: config.leaseTtlMs,
      logger: this.logger,
    });
    this.cadence = new ViolationCadence(config.violationRepublishSec * 1000);
    const historyWriteFail = cycleHistoryWriteFailures(this.metrics.registry);
    this.history = new CycleHistory({
      client: this.client,
      streamKey: this.keys.cycleHistoryStream,
      maxLen: config.cycleHistoryMaxLen ?? 0,
      instanceId: config.instanceId,
      logger: this.logger,
      onWriteFailed: () => historyWriteFail.inc(),
    });
    this.createdAt = this.now();
    this.metrics.setMode(config.mode);
    this.metrics.setModeSource('env');
    this.metrics.setLeader(false);
  }

  /** The effective mode of the latest cycle (P28_MODE before the first). */
  get mode(): Mode {
    return this.modeSwitch.mode;
  }

  get role(): WorkerRole {
    return this.lease.isLeader ? 'leader' : 'standby';
  }

  /** Epoch ms (worker clock) at which the last cycle ended ok or standby; undefined before. */
  get lastSuccessAtMs(): number | undefined {
    return this.lastSuccessAt;
  }

  get lastCycle(): CycleReport | undefined {
    return this.lastReport;
  }

  /** What /health reports about this worker (`evaluateHealth`). */
  get healthFacts(): WorkerHealthFacts {
    return {
      mode: this.mode,
      modeSource: this.modeSource,
      role: this.role,
      budgetsWrittenAtMs: this.budgetsWrittenAt,
      startedAtMs: this.createdAt,
      lastSuccessAtMs: this.lastSuccessAt,
      lastCycleResult: this.lastReport?.result,
      failedInARow: this.failedInARow,
      lastError: this.lastError,
      lastCause: this.lastCause,
      futureHeartbeat: this.heartbeatCheck.future,
      invalidKeys: this.keyProblems.current,
      positions: this.lastPositions,
    };
  }

  /** Runs one cycle now; while one is running, returns that one instead of starting another. */
  runOnce(): Promise<CycleReport> {
    this.inFlight ??= this.cycle().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Starts the loop: a cycle now, then one every BUDGET_COMPUTE_INTERVAL_SEC, measured start to start. */
  start(): void {
    if (this.looping) return;
    this.looping = true;
    const intervalMs = this.config.computeIntervalSec * 1000;
    const tick = async (): Promise<void> => {
      const started = performance.now();
      await this.runOnce();
      if (!this.looping) return;
      // A cycle longer than the interval is followed at once by the next, never overlapped by it.
      this.timer = setTimeout(() => void tick(), Math.max(0, intervalMs - (performance.now() - started)));
    };
    this.timer = setTimeout(() => void tick(), 0);
  }

  /**
   * Stops the loop, lets a running cycle finish (it is bounded by the Redis command and heat
   * timeouts) and releases the lease if this replica holds it. Does not close the Redis client.
   */
  async stop(): Promise<void> {
    this.looping = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) await this.inFlight;
    await this.lease.release();
    this.metrics.setLeader(false);
  }

  private async cycle(): Promise<CycleReport> {
    // One TIME per cycle: the cycle's writes carry Redis's time, whatever this host's clock says.
    if (this.clock) await this.clock.measure();
    const started = performance.now();
    this.cycleStartedPerf = started;
    const report: CycleReport = {
      result: 'failed',
      role: this.role,
      mode: this.modeSwitch.mode,
      modeSource: this.modeSource,
      startedAt: this.now(),
      durationMs: 0,
      portfolio: { source: 'none' },
      symbols: 0,
      scanPages: 0,
      budgets: [],
      written: [],
      violations: [],
      skipped: [],
      staleInputs: {},
      writeFailures: [],
    };
    try {
      if (!this.startOverrideCleared) await this.clearOverrideAtStart(report.startedAt);
      const leader = await redisStep('lease', () => this.lease.hold());
      report.role = leader ? 'leader' : 'standby';
      this.metrics.setLeader(leader);
      if (leader) await this.leaderCycle(report);
      else await this.standbyCycle(report);
    } catch (error) {
      report.result = 'failed';
      report.role = this.role;
      report.error = error instanceof Error ? error.message : String(error);
      if (error instanceof RedisStepError) {
        report.cause = redisErrorCause(error.cause);
        this.metrics.redisWriteFail.inc();
      } else {
        report.cause = 'INTERNAL';
        this.logger.error({ err: error }, 'cycle failed on an unexpected error');
      }
    }
    return this.finish(report, started);
  }

  /**
   * One truth for the mode: a starting worker deletes the run-time override, so that P28_MODE in
   * the env file is what a restart brings back (the guide's rollback), and audits what it removed.
   * Retried every cycle until Redis has answered once.
   */
  private async clearOverrideAtStart(nowMs: number): Promise<void> {
    let removed: string | null;
    try {
      removed = await redisStep('clear mode override', () => this.client.getdel(this.keys.modeOverride));
    } catch (error) {
      if (!(error instanceof RedisStepError) || !messageOf(error.cause).startsWith('WRONGTYPE')) throw error;
      // An override key that is not a string is no override: P28_MODE applies, and the key is named.
      this.keyProblems.note({ kind: 'mode_override', problem: 'wrong_type', key: this.keys.modeOverride });
      removed = null;
    }
    this.startOverrideCleared = true;
    if (removed === null) return;
    const entry = this.modeSwitch.clearedAtStartCommand(this.keys.modeAuditStream, removed, nowMs);
    await redisStep('audit cleared mode override', () => execBatch(this.client, [entry]));
    this.logger.warn({ override: removed, mode: this.config.mode }, `run-time mode override ${JSON.stringify(removed)} cleared at start; mode = P28_MODE = ${this.config.mode}`);
  }

  private async standbyCycle(report: CycleReport): Promise<void> {
    // A stand-by still follows the override, so its /health and p28_enforce_mode tell the truth.
    const read = await redisStep('read mode override', () => this.reader.readStandby());
    this.noteHeartbeat(read.heartbeat);
    const decision = this.modeSwitch.resolve(read.override, report.startedAt);
    this.applyMode(report, decision);
    report.result = 'standby';
  }

  /**
   * The leader's cycle, step by step: read the inputs, settle the mode and the portfolio state, build
   * the symbol universe, read its symbols, compute the budgets, pick the violations due, write, and
   * record. A step that cannot reach Redis ends the cycle (`RedisStepError`).
   */
  private async leaderCycle(report: CycleReport): Promise<void> {
    const nowMs = report.startedAt;
    const heatPromise = this.readHeat();
    const head = await redisStep('read inputs', () => this.reader.readHead());
    report.scanPages = head.scanPages;
    this.noteHeartbeat(head.heartbeat);
    const mode = this.settleMode(report, head);
    this.countInvalidSnapshotKeys(report, head.invalidKeys);
    const portfolio = this.settlePortfolio(report, head.portfolio, nowMs);
    const heat = await this.settleHeat(report, heatPromise);

    if (!portfolio) {
      // No usable equity: write no budgets, so the old ones expire and the gate fails open.
      await this.write(report, [], mode.audit);
      report.result = report.writeFailures.length > 0 ? 'failed' : 'skipped';
      return;
    }
    this.metrics.portfolioHeat.set(heat);

    const symbols = this.buildUniverse(report, head);
    this.logCaseFoldedKeys(head.caseFoldedKeys);
    const fresh = report.portfolio.source === 'fresh' ? portfolio : undefined;
    const read = await redisStep('read symbols', () => this.reader.readSymbols(symbols, nowMs, fresh));
    report.skipped.push(...read.skipped);
    this.recordProblems(report, read.problems);
    this.notePositions(report, read);

    const writes = await this.computeWrites(report, read.inputs, { equityUsd: portfolio.equity_usd, heat, mode: mode.mode, nowMs });
    const announce = this.violationsDue(writes, nowMs);

    if (!this.lease.isLeader) {
      // The process stalled for longer than the lease TTL since the lease was confirmed: another
      // replica may lead by now, so this cycle's results are dropped rather than written.
      report.role = 'standby';
      report.result = 'standby';
      this.metrics.setLeader(false);
      return;
    }
    const published = await this.write(report, announce, mode.audit);
    if (report.fenced) {
      // A newer tenure holds the lease: this replica's late writes were refused in Redis.
      report.role = 'standby';
      report.result = 'standby';
      this.metrics.setLeader(false);
      return;
    }
    this.recordAnnounced(announce, published, nowMs);
    this.metrics.recordBudgets(
      report.budgets.map((b) => ({ symbol: b.symbol, budgetUsd: b.budget_usd, stressFactor: b.stress_factor, mode: b.mode, overBudget: (b.over_budget_usd ?? 0) > 0 })),
      read.inputs.filter((i) => i.positionAmt !== 0).length,
    );
    report.result = report.writeFailures.length > 0 ? 'failed' : 'ok';
    if (report.result === 'ok') await this.writeHeartbeat(report, nowMs);
    if (report.fenced) {
      report.role = 'standby';
      report.result = 'standby';
      this.metrics.setLeader(false);
    }
  }

  /** The cycle's effective mode from the override, and the audit entry to append with the writes. */
  private settleMode(report: CycleReport, head: CycleHead): { mode: Mode; audit: RedisCommand[] } {
    const decision = this.modeSwitch.resolve(head.override, report.startedAt, head.auditTail);
    this.applyMode(report, decision);
    return { mode: decision.mode, audit: decision.audit ? [this.modeSwitch.auditCommand(this.keys.modeAuditStream, decision.audit)] : [] };
  }

  private countInvalidSnapshotKeys(report: CycleReport, keys: readonly string[]): void {
    for (const key of keys) {
      report.skipped.push({ symbol: key, reason: 'snapshot key does not name a valid symbol' });
      this.countStale(report, 'position_snapshot');
    }
  }

  /** The portfolio state the cycle runs on (fresh or last-known-good), or undefined when there is none. */
  private settlePortfolio(report: CycleReport, raw: CycleHead['portfolio'], nowMs: number): PortfolioStateHash | undefined {
    const portfolio = this.portfolioState.evaluate(raw, nowMs);
    report.portfolio = { source: portfolio.source };
    if (portfolio.state) {
      report.portfolio.equityUsd = portfolio.state.equity_usd;
      report.portfolio.timestamp = portfolio.state.timestamp;
    }
    if (portfolio.ageSec !== undefined) report.portfolio.ageSec = portfolio.ageSec;
    if (portfolio.problem) report.portfolio.problem = portfolio.problem;
    if (portfolio.source !== 'fresh') this.countStale(report, 'portfolio_state');
    this.metrics.recordPortfolioSource(portfolio.source);
    this.logPortfolioChange(portfolio.source, portfolio.problem, portfolio.ageSec);
    return portfolio.state;
  }

  private async settleHeat(report: CycleReport, reading: Promise<HeatReading>): Promise<number> {
    const heat = await reading;
    report.heat = heat;
    if (heat.source !== 'live') this.countStale(report, 'heat');
    return heat.value;
  }

  /** The symbols that get a budget: held, configured and tracked, capped; the excess counted and logged on change. */
  private buildUniverse(report: CycleReport, head: CycleHead): string[] {
    const universe = symbolUniverse({ held: head.symbols, configured: this.config.extraSymbols, tracked: head.trackedSymbols }, this.config.maxSymbols);
    report.symbols = universe.symbols.length;
    report.overCap = universe.overCap.length;
    if (universe.overCap.length > 0) this.metrics.symbolsOverCap.inc(universe.overCap.length);
    if (universe.overCap.length !== this.lastOverCap) {
      if (universe.overCap.length > 0) {
        this.logger.warn(
          { maxSymbols: this.config.maxSymbols, overCap: universe.overCap.length, firstLeftOut: universe.overCap.slice(0, 20) },
          `symbol universe exceeds P28_MAX_SYMBOLS=${this.config.maxSymbols}: ${universe.overCap.length} symbols get no budget (the gate fails open for them)`,
        );
      } else {
        this.logger.info({ maxSymbols: this.config.maxSymbols }, 'symbol universe within P28_MAX_SYMBOLS again');
      }
      this.lastOverCap = universe.overCap.length;
    }
    return universe.symbols;
  }

  /** The budgets of `inputs`, computed in slices of `COMPUTE_SLICE_SYMBOLS`, yielding to the event loop between them. */
  private async computeWrites(report: CycleReport, inputs: readonly SymbolInputs[], at: { equityUsd: number; heat: number; mode: Mode; nowMs: number }): Promise<BudgetWrite[]> {
    const writes: BudgetWrite[] = [];
    for (let from = 0; from < inputs.length; from += COMPUTE_SLICE_SYMBOLS) {
      if (from > 0) await yieldToEventLoop();
      const computed = computeBudgets(inputs.slice(from, from + COMPUTE_SLICE_SYMBOLS), {
        equityUsd: at.equityUsd,
        portfolioHeat: at.heat,
        params: this.config.budget,
        modeOf: (symbol) => this.modeSwitch.symbolMode(symbol, at.mode),
        timestamp: Math.floor(at.nowMs / 1000),
      });
      for (const rejected of computed.rejected) {
        report.skipped.push(rejected);
        this.logger.error(rejected, 'budget not computable; symbol skipped');
      }
      for (const write of computed.writes) {
        report.budgets.push(write.record);
        writes.push(write);
      }
    }
    return writes;
  }

  /** The writes with only the violations that are due on the stream this cycle (`violationDue`). */
  private violationsDue(writes: readonly BudgetWrite[], nowMs: number): BudgetWrite[] {
    const over = new Set<string>();
    const out = writes.map((write) => {
      if (!write.violation) return write;
      over.add(write.record.symbol);
      if (!this.cadence.due(write.record.symbol, announcementOf(write.violation), nowMs)) return { record: write.record };
      return write;
    });
    this.cadence.retain(over);
    return out;
  }

  private recordAnnounced(writes: readonly BudgetWrite[], published: ReadonlySet<string>, nowMs: number): void {
    for (const write of writes) {
      if (!write.violation || !published.has(write.record.symbol)) continue;
      this.cadence.record(write.record.symbol, announcementOf(write.violation), nowMs);
    }
  }

  /** The heartbeat every replica reads for /health and `p28_budgets_written_timestamp_seconds`. */
  private async writeHeartbeat(report: CycleReport, nowMs: number): Promise<void> {
    const cycleMs = performance.now() - this.cycleStartedPerf;
    const beat: WorkerHeartbeat = {
      last_success_ts: Math.round(nowMs + cycleMs),
      leader: this.config.instanceId,
      symbols_written: report.written.length,
      cycle_ms: cycleMs,
      // What `p28-worker mode` reports: the mode the workers run, not the one of the operator's shell.
      mode: this.modeSwitch.mode,
      mode_source: this.modeSource,
      configured_mode: this.config.mode,
    };
    const fence = this.lease.fence;
    const fields = encodeWorkerHeartbeat(beat);
    const [outcome] = await redisStep('write heartbeat', () =>
      fence
        ? execFencedBatch(this.client, [fencedWriteCommand(this.client, fence, this.keys.workerHeartbeat, 0, [], fields)])
        : execBatch(this.client, [['hset', this.keys.workerHeartbeat, ...Object.entries(fields).flat()]]),
    );
    if (outcome!.error) {
      // A heartbeat key of the wrong type costs the heartbeat, not the cycle: counted and named.
      this.keyProblems.note({ kind: 'heartbeat', problem: 'wrong_type', key: this.keys.workerHeartbeat, detail: outcome!.error.message });
      // The budgets were written all the same; this replica knows it, the stand-bys cannot.
      this.noteHeartbeat(beat);
      return;
    }
    if (typeof outcome!.value === 'number' && outcome!.value !== FENCED_WRITE.written) return this.fencedOut(report, 1);
    this.noteHeartbeat(beat);
  }

  /** The heartbeat as last read (or written): Redis holds the truth, whichever replica wrote it. */
  private noteHeartbeat(beat: WorkerHeartbeat | undefined): void {
    if (beat === undefined || !this.heartbeatCheck.accept(beat)) return;
    this.budgetsWrittenAt = beat.last_success_ts;
    this.metrics.budgetsWritten.set(beat.last_success_ts / 1000);
  }

  /** Logs the portfolio state's fallbacks once per change of cause with a count, not on every cycle. */
  private logPortfolioChange(source: PortfolioSource, problem: string | undefined, ageSec: number | undefined): void {
    if (source === 'fresh') return this.portfolioLog.resolved({}, 'portfolio state fresh again');
    // Numbers (the timestamp, a clock skew in seconds) change every cycle; the kind of problem does not.
    const cause = `${source}/${problem?.split(':')[0]?.replace(/-?[\d.]+/g, 'N')}`;
    if (source === 'lkg') this.portfolioLog.problem(cause, { problem, ageSec }, 'portfolio state unusable; the last-known-good state stands in');
    else this.portfolioLog.problem(cause, { problem }, 'no usable portfolio state; no budgets are written until one is');
  }

  /** The heat reading; an injected reader that rejects counts as an unreachable heat source. */
  private async readHeat(): Promise<HeatReading> {
    try {
      return await this.heat.read();
    } catch (error) {
      return { value: 0, source: 'default', failure: 'unreachable', detail: (error as Error).message };
    }
  }

  /** Writes the budgets, the violations due and `extra` (the mode audit entry); resolves to the symbols whose violation reached the stream. */
  private async write(report: CycleReport, writes: BudgetWrite[], extra: RedisCommand[]): Promise<Set<string>> {
    if (writes.length === 0 && extra.length === 0) return new Set();
    const result = await redisStep('write budgets', () => this.writer.write(writes, extra));
    report.written = result.written;
    report.writeFailures = this.keepOwnFailures(result.failures);
    if (result.fenced.length > 0) this.fencedOut(report, result.fenced.length);
    for (const write of writes) if (write.violation && result.published.includes(write.record.symbol)) report.violations.push(write.violation);
    // Logged with the failed cycle (once per cause), not here on every cycle.
    if (report.writeFailures.length > 0) this.metrics.redisWriteFail.inc();
    return new Set(result.published);
  }

  /**
   * A key of the wrong type (a string where a budget hash or a stream belongs) costs only its own
   * symbol or feature: it is counted and named (`KeyProblems`), not a failure of the cycle. What is
   * left are the failures that say Redis refused the cycle's writes (NOPERM, OOM, READONLY, ...).
   */
  private keepOwnFailures(failures: readonly WriteFailure[]): WriteFailure[] {
    const kept: WriteFailure[] = [];
    for (const failure of failures) {
      if (!failure.error.startsWith('WRONGTYPE')) {
        kept.push(failure);
        continue;
      }
      const stream = failure.target.split(' ')[0]!;
      if (stream === this.keys.violationStream) this.keyProblems.note({ kind: 'violation_stream', problem: 'wrong_type', key: stream });
      else if (stream === this.keys.modeAuditStream) this.keyProblems.note({ kind: 'mode_audit_stream', problem: 'wrong_type', key: stream });
      else this.keyProblems.note({ kind: 'budget', problem: 'wrong_type', key: this.keys.budget(failure.target) });
    }
    return kept;
  }

  /**
   * Writes were refused in Redis because a newer tenure holds the lease (fencing): they did not
   * land, nothing failed, and this replica stands by.
   */
  private fencedOut(report: CycleReport, refused: number): void {
    report.fenced = (report.fenced ?? 0) + refused;
    this.lease.lost(`${refused} writes refused by fencing: a newer leader holds the lease`);
  }

  private applyMode(report: CycleReport, decision: ModeDecision): void {
    report.mode = decision.mode;
    report.modeSource = decision.source;
    this.modeSource = decision.source;
    this.metrics.setMode(decision.mode);
    this.metrics.setModeSource(decision.source);
    if (decision.invalidOverride !== undefined) this.countStale(report, 'mode_override');
    if (decision.invalidOverride?.includes('WRONGTYPE')) this.keyProblems.note({ kind: 'mode_override', problem: 'wrong_type', key: this.keys.modeOverride });
  }

  /**
   * Counts the cycle's unknown positions by status for the report, /health and `budgets`, and logs
   * them once per change (which symbols, and why), never on every cycle.
   */
  private notePositions(report: CycleReport, read: SymbolsRead): void {
    const positions: NonNullable<CycleReport['positions']> = { stale: 0, unknown: 0, invalid: 0 };
    const symbols: string[] = [];
    for (const input of read.inputs) {
      if (input.positionStatus === 'ok') continue;
      positions[input.positionStatus] += 1;
      symbols.push(input.symbol);
    }
    if (!read.positionsFeed.complete) positions.feedProblem = read.positionsFeed.problem;
    report.positions = positions;
    this.lastPositions = positions;
    if (symbols.length === 0) return this.positionsLog.resolved({}, 'every position known again');
    const cause = `${positions.stale}/${positions.unknown}/${positions.invalid}/${symbols.slice(0, 50).join(',')}`;
    const details = read.problems.filter((p) => p.inputType === 'position').slice(0, 20).map((p) => `${p.subject}: ${p.detail}`);
    this.positionsLog.problem(
      cause,
      { ...positions, symbols: symbols.slice(0, 50), details },
      `${symbols.length} positions unknown (judged by each plan's own notional, never as flat)`,
    );
  }

  private logCaseFoldedKeys(keys: readonly string[]): void {
    if (keys.length === 0) return this.caseFoldedLog.resolved({}, 'no input key names a symbol in lower case any more');
    const sorted = [...keys].sort();
    this.caseFoldedLog.problem(sorted.slice(0, 50).join(','), { keys: sorted.slice(0, 50), count: sorted.length }, 'input keys name symbols in another case; read as the upper-case symbol');
  }

  private recordProblems(report: CycleReport, problems: readonly InputProblem[]): void {
    for (const p of problems) {
      this.countStale(report, p.inputType);
      this.logger.debug({ inputType: p.inputType, subject: p.subject, detail: p.detail }, 'input fallback');
    }
  }

  private countStale(report: CycleReport, inputType: StaleInputType): void {
    report.staleInputs[inputType] = (report.staleInputs[inputType] ?? 0) + 1;
    this.metrics.countStale(inputType);
  }

  private finish(report: CycleReport, started: number): CycleReport {
    report.durationMs = performance.now() - started;
    this.keyProblems.endCycle();
    if (report.result === 'failed') report.cause ??= report.writeFailures[0] ? redisErrorCause(report.writeFailures[0].error) : 'ERROR';
    const endedAt = report.startedAt + report.durationMs;
    if (report.result === 'ok' || report.result === 'standby') this.lastSuccessAt = endedAt;
    if (report.result === 'failed') {
      this.failedInARow += 1;
      this.lastError = report.error ?? report.writeFailures.map((f) => `${f.target}: ${f.error}`)[0];
      this.lastCause = report.cause;
    } else {
      this.failedInARow = 0;
    }
    this.metrics.recordCycle(report.result, report.durationMs / 1000, endedAt);
    void this.history.record(report);
    this.lastReport = report;
    const line = {
      result: report.result,
      role: report.role,
      mode: report.mode,
      portfolio: report.portfolio.source,
      heat: report.heat?.source,
      symbols: report.symbols,
      ...(report.overCap ? { overCap: report.overCap } : {}),
      written: report.written.length,
      violations: report.violations.length,
      skipped: report.skipped.length,
      stale: report.staleInputs,
      writeFailures: report.writeFailures.length,
      ...(report.fenced ? { fenced: report.fenced } : {}),
      durationMs: Math.round(report.durationMs * 10) / 10,
      ...(report.error ? { error: report.error } : {}),
      ...(report.cause ? { cause: report.cause } : {}),
    };
    if (report.result === 'failed') {
      const failures = report.writeFailures.length > 0 ? { failures: report.writeFailures.slice(0, 5) } : {};
      this.failureLog.problem(report.cause ?? 'ERROR', { ...line, ...failures }, 'cycle failed; the next cycle writes everything again (repeats of this cause are counted, not logged)');
    } else {
      this.failureLog.resolved({ result: report.result }, 'cycles succeed again');
      this.logger.info(line, 'cycle');
    }
    return report;
  }
}
