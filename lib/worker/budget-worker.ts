import { performance } from 'node:perf_hooks';
import type { Mode } from '../../types/mode';
import { computeBudgets, type BudgetWrite } from '../engine/budget-record';
import { BudgetWriter } from './budget-writer';
import { command, execBatch } from '../redis/command-batch';
import type { WorkerConfig } from '../config';
import { HeatSource, type HeatReader, type HeatReading } from './heat-source';
import { RedisKeys } from '../redis/keys';
import { LeaderLease } from './leader-lease';
import { silentLogger, type Logger } from '../logger';
import { ModeSwitch, type ModeSource } from './mode-switch';
import { PortfolioReader, type InputProblem } from './input-reader';
import { PortfolioStateTracker, type PortfolioSource } from '../engine/portfolio-state';
import type { RedisClient } from '../redis/client';
import { redisErrorCause } from '../redis/error-cause';
import { CauseLog } from '../cause-log';
import { WorkerMetrics } from './worker-metrics';
import type { CycleReport, StaleInputType, WorkerRole } from './cycle-report';


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
}

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
  private readonly modeSwitch: ModeSwitch;
  private readonly reader: PortfolioReader;
  private readonly portfolioState: PortfolioStateTracker;
  private readonly writer: BudgetWriter;

  private inFlight: Promise<CycleReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private looping = false;
  private lastReport: CycleReport | undefined;
  private lastSuccessAt: number | undefined;
  private consecutiveFailures = 0;
  private readonly failureLog: CauseLog;
  /** Fallbacks of the portfolio state, logged once per cause. */
  private readonly portfolioLog: CauseLog;

  constructor(options: BudgetWorkerOptions) {
    const { config } = options;
    this.config = config;
    this.client = options.redis;
    this.keys = new RedisKeys(config.keyPrefix);
    this.logger = options.logger ?? silentLogger;
    this.failureLog = new CauseLog(this.logger);
    this.portfolioLog = new CauseLog(this.logger);
    this.metrics = options.metrics ?? new WorkerMetrics();
    this.now = options.now ?? (() => Date.now());
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
    this.reader = new PortfolioReader({ client: this.client, keys: this.keys, scanCount: options.scanCount });
    this.portfolioState = new PortfolioStateTracker({ staleSec: config.staleSec, maxLkgAgeSec: config.maxLkgAgeSec });
    this.writer = new BudgetWriter({
      client: this.client,
      keys: this.keys,
      ttlSec: config.budgetHashTtlSec,
      violationStreamMaxLen: config.violationStreamMaxLen,
    });
    this.lease = new LeaderLease(this.client, {
      key: this.keys.workerLease,
      instanceId: config.instanceId,
      ttlMs: config.leaseTtlMs,
      logger: this.logger,
    });
    this.metrics.setMode(config.mode);
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

  /**
   * How many cycles in a row have failed, and the cause of the latest (`NOPERM`, `OOM`, ...);
   * `{ count: 0 }` once a cycle succeeds. /health names the cause when every cycle fails.
   */
  get failures(): { count: number; cause?: string } {
    if (this.consecutiveFailures === 0) return { count: 0 };
    return { count: this.consecutiveFailures, cause: this.lastReport?.cause };
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
    const started = performance.now();
    const report: CycleReport = {
      result: 'failed',
      role: this.role,
      mode: this.modeSwitch.mode,
      modeSource: 'env',
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

  private async standbyCycle(report: CycleReport): Promise<void> {
    // A stand-by still follows the override, so its /health and p28_enforce_mode tell the truth.
    const [override] = await redisStep('read mode override', () => execBatch(this.client, [command('get', this.keys.modeOverride)]));
    const decision = this.modeSwitch.resolve(override!.error ?? (override!.value as string | null), report.startedAt);
    this.applyMode(report, decision.mode, decision.source, decision.invalidOverride);
    report.result = 'standby';
  }

  private async leaderCycle(report: CycleReport): Promise<void> {
    const nowMs = report.startedAt;
    const heatPromise = this.readHeat();
    const head = await redisStep('read inputs', () => this.reader.readHead());
    report.scanPages = head.scanPages;
    report.symbols = head.symbols.length;

    const decision = this.modeSwitch.resolve(head.override, nowMs, head.auditTail);
    this.applyMode(report, decision.mode, decision.source, decision.invalidOverride);
    const extra = decision.audit ? [this.modeSwitch.auditCommand(this.keys.modeAuditStream, decision.audit)] : [];

    for (const key of head.invalidKeys) {
      report.skipped.push({ symbol: key, reason: 'snapshot key does not name a valid symbol' });
      this.countStale(report, 'position_snapshot');
    }

    const portfolio = this.portfolioState.evaluate(head.portfolio, nowMs);
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

    const heat = await heatPromise;
    report.heat = heat;
    if (heat.source !== 'live') this.countStale(report, 'heat');

    if (!portfolio.state) {
      // No usable equity: write no budgets, so the old ones expire and the gate fails open.
      await this.write(report, [], extra);
      report.result = report.writeFailures.length > 0 ? 'failed' : 'skipped';
      return;
    }
    this.metrics.portfolioHeat.set(heat.value);

    const read = await redisStep('read symbols', () => this.reader.readSymbols(head.symbols));
    report.skipped.push(...read.skipped);
    this.recordProblems(report, read.problems);

    const computed = computeBudgets(read.inputs, {
      equityUsd: portfolio.state.equity_usd,
      portfolioHeat: heat.value,
      params: this.config.budget,
      modeOf: (symbol) => this.modeSwitch.symbolMode(symbol, decision.mode),
      timestamp: Math.floor(nowMs / 1000),
    });
    for (const rejected of computed.rejected) {
      report.skipped.push(rejected);
      this.logger.error(rejected, 'budget not computable; symbol skipped');
    }
    const writes: BudgetWrite[] = computed.writes;
    for (const write of writes) {
      report.budgets.push(write.record);
      if (write.violation) report.violations.push(write.violation);
    }

    if (!this.lease.isLeader) {
      // The process stalled for longer than the lease TTL since the lease was confirmed: another
      // replica may lead by now, so this cycle's results are dropped rather than written.
      report.role = 'standby';
      report.result = 'standby';
      this.metrics.setLeader(false);
      return;
    }
    await this.write(report, writes, extra);
    this.metrics.recordBudgets(
      report.budgets.map((b) => ({ symbol: b.symbol, budgetUsd: b.budget_usd, stressFactor: b.stress_factor, mode: b.mode, overBudget: b.over_budget_usd > 0 })),
      read.inputs.filter((i) => i.positionAmt !== 0).length,
    );
    report.result = report.writeFailures.length > 0 ? 'failed' : 'ok';
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

  private async write(report: CycleReport, writes: BudgetWrite[], extra: ReturnType<ModeSwitch['auditCommand']>[]): Promise<void> {
    if (writes.length === 0 && extra.length === 0) return;
    const result = await redisStep('write budgets', () => this.writer.write(writes, extra));
    report.written = result.written;
    report.writeFailures = result.failures;
    // Logged with the failed cycle (once per cause), not here on every cycle.
    if (result.failures.length > 0) this.metrics.redisWriteFail.inc();
  }

  private applyMode(report: CycleReport, mode: Mode, source: ModeSource, invalidOverride: string | undefined): void {
    report.mode = mode;
    report.modeSource = source;
    this.metrics.setMode(mode);
    if (invalidOverride !== undefined) this.countStale(report, 'mode_override');
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
    if (report.result === 'failed') {
      report.cause ??= report.writeFailures[0] ? redisErrorCause(report.writeFailures[0].error) : 'ERROR';
      this.consecutiveFailures += 1;
    } else {
      this.consecutiveFailures = 0;
    }
    const endedAt = report.startedAt + report.durationMs;
    if (report.result === 'ok' || report.result === 'standby') this.lastSuccessAt = endedAt;
    this.metrics.recordCycle(report.result, report.durationMs / 1000, endedAt);
    this.lastReport = report;
    const line = {
      result: report.result,
      role: report.role,
      mode: report.mode,
      portfolio: report.portfolio.source,
      heat: report.heat?.source,
      symbols: report.symbols,
      written: report.written.length,
      violations: report.violations.length,
      skipped: report.skipped.length,
      stale: report.staleInputs,
      writeFailures: report.writeFailures.length,
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
