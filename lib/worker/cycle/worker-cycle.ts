import { performance } from 'node:perf_hooks';
import type { WorkerConfig } from '../../config';
import type { Logger } from '../../logger';
import type { RedisClient } from '../../redis/client';
import { redisErrorCause } from '../../redis/error-cause';
import type { RedisKeys } from '../../redis/keys';
import type { ServerClock } from '../../redis/server-clock';
import { BudgetWriter } from '../budget-writer';
import { CycleHistory, cycleHistoryWriteFailures } from '../cycle-history';
import type { CycleReport } from '../cycle-report';
import type { HeartbeatCheck } from '../heartbeat-check';
import { PortfolioReader } from '../input-reader';
import type { KeyProblems } from '../key-problems';
import type { LeaderLease } from '../leader-lease';
import type { ModeSwitch } from '../mode-switch';
import type { HeatReader } from '../sources/heat-source';
import type { WorkerMetrics } from '../worker-metrics';
import { ComputeStep } from './compute-step';
import { newCycleContext, type CycleContext } from './cycle-context';
import { CycleLease } from './cycle-lease';
import { CycleLog } from './cycle-log';
import { CycleMode } from './cycle-mode';
import { CycleOutcomes } from './cycle-outcomes';
import { HeartbeatStep } from './heartbeat-step';
import { ReadStep } from './read-step';
import { RedisStepError } from './redis-step';
import { StartOverride } from './start-override';
import { UniverseStep } from './universe-step';
import { ViolationsStep } from './violations-step';
import { WriteStep } from './write-step';

/** What the cycle shares with the rest of the worker. */
export interface WorkerCycleParts {
  config: WorkerConfig;
  client: RedisClient;
  keys: RedisKeys;
  logger: Logger;
  metrics: WorkerMetrics;
  /** The worker's clock in epoch ms. */
  now: () => number;
  /** Redis's clock, measured once per cycle; undefined: `now` alone. */
  clock: ServerClock | undefined;
  heat: HeatReader;
  /** COUNT hint of the snapshot SCAN (default `PORTFOLIO_READER_DEFAULTS.scanCount`). */
  scanCount: number | undefined;
  modeSwitch: ModeSwitch;
  lease: LeaderLease;
  keyProblems: KeyProblems;
  heartbeatCheck: HeartbeatCheck;
}

/**
 * One worker cycle, as named steps over one `CycleContext`: (first cycle of a process) clear the
 * run-time mode override; take or renew the lease; then, as the leader, read, universe, compute,
 * violations, write and heartbeat, or, as a stand-by, read the override and the heartbeat only.
 * A step that cannot reach Redis ends the cycle (`RedisStepError`); every cycle ends in `finish`,
 * which records it, counts it and logs its line. `run()` never rejects.
 */
export class WorkerCycle {
  readonly mode: CycleMode;
  readonly lease: CycleLease;
  readonly outcomes = new CycleOutcomes();
  readonly heartbeat: HeartbeatStep;
  readonly universe: UniverseStep;
  private readonly read: ReadStep;
  private readonly compute: ComputeStep;
  private readonly violations: ViolationsStep;
  private readonly write: WriteStep;
  private readonly startOverride: StartOverride;
  private readonly log: CycleLog;
  private readonly history: CycleHistory;

  constructor(private readonly parts: WorkerCycleParts) {
    const { config, client, keys, logger, metrics, modeSwitch, keyProblems } = parts;
    const reader = new PortfolioReader({
      client,
      keys,
      heat: parts.heat,
      scanCount: parts.scanCount,
      limits: config,
    });
    const writer = new BudgetWriter({
      client,
      keys,
      ttlSec: config.budgetHashTtlSec,
      violationStreamMaxLen: config.violationStreamMaxLen,
      leaseTerm: () => parts.lease.term,
      fence: () => parts.lease.fence,
    });
    this.lease = new CycleLease(parts.lease, metrics);
    this.mode = new CycleMode({ modeSwitch, keys, metrics, keyProblems });
    this.heartbeat = new HeartbeatStep({ config, client, keys, metrics, modeSwitch, cycleMode: this.mode, check: parts.heartbeatCheck, keyProblems, lease: this.lease });
    this.read = new ReadStep({ reader, cycleMode: this.mode, heartbeat: this.heartbeat, metrics, logger });
    this.universe = new UniverseStep({ config, reader, metrics, logger });
    this.compute = new ComputeStep({ config, modeSwitch, logger });
    this.violations = new ViolationsStep(config.violationRepublishSec);
    this.write = new WriteStep({ writer, keys, keyProblems, metrics, lease: this.lease });
    this.startOverride = new StartOverride({ config, client, keys, modeSwitch, keyProblems, logger });
    this.log = new CycleLog(logger);
    const historyWriteFail = cycleHistoryWriteFailures(metrics.registry);
    this.history = new CycleHistory({
      client,
      streamKey: keys.cycleHistoryStream,
      maxLen: config.cycleHistoryMaxLen ?? 0,
      instanceId: config.instanceId,
      logger,
      onWriteFailed: () => historyWriteFail.inc(),
    });
  }

  async run(): Promise<CycleReport> {
    const { clock, now, modeSwitch, metrics, logger } = this.parts;
    // One TIME per cycle: the cycle's writes carry Redis's time, whatever this host's clock says.
    if (clock) await clock.measure();
    const startedPerf = performance.now();
    const ctx = newCycleContext({ startedPerf, role: this.lease.role, mode: modeSwitch.mode, modeSource: this.mode.source, nowMs: now() });
    const { report } = ctx;
    try {
      await this.startOverride.clearOnce(report.startedAt);
      if (await this.lease.hold(report)) await this.leaderCycle(ctx);
      else await this.standbyCycle(ctx);
    } catch (error) {
      report.result = 'failed';
      report.role = this.lease.role;
      report.error = error instanceof Error ? error.message : String(error);
      if (error instanceof RedisStepError) {
        report.cause = redisErrorCause(error.cause);
        metrics.redisWriteFail.inc();
      } else {
        report.cause = 'INTERNAL';
        logger.error({ err: error }, 'cycle failed on an unexpected error');
      }
    }
    return this.finish(ctx);
  }

  private async standbyCycle(ctx: CycleContext): Promise<void> {
    await this.read.runStandby(ctx);
    ctx.report.result = 'standby';
  }

  private async leaderCycle(ctx: CycleContext): Promise<void> {
    const { report } = ctx;
    await this.read.run(ctx);
    if (!ctx.portfolio) {
      // No usable equity: write no budgets, so the old ones expire and the gate fails open.
      await this.write.run(ctx);
      report.result = report.writeFailures.length > 0 ? 'failed' : 'skipped';
      return;
    }
    this.parts.metrics.portfolioHeat.set(ctx.heat);
    await this.universe.run(ctx);
    await this.compute.run(ctx);
    this.violations.run(ctx);
    if (!this.lease.stillLeads(report)) return;
    await this.write.run(ctx);
    // A newer tenure holds the lease: this replica's late writes were refused in Redis.
    if (report.fenced) return this.lease.standBy(report);
    this.violations.recordPublished(ctx);
    this.parts.metrics.recordBudgets(
      report.budgets.map((b) => ({ symbol: b.symbol, budgetUsd: b.budget_usd, stressFactor: b.stress_factor, mode: b.mode, overBudget: (b.over_budget_usd ?? 0) > 0 })),
      ctx.inputs.filter((i) => i.positionAmt !== 0).length,
    );
    report.result = report.writeFailures.length > 0 ? 'failed' : 'ok';
    if (report.result === 'ok') await this.heartbeat.run(ctx);
    if (report.fenced) this.lease.standBy(report);
  }

  private finish(ctx: CycleContext): CycleReport {
    const { report } = ctx;
    report.durationMs = performance.now() - ctx.startedPerf;
    this.parts.keyProblems.endCycle();
    if (report.result === 'failed') report.cause ??= report.writeFailures[0] ? redisErrorCause(report.writeFailures[0].error) : 'ERROR';
    this.outcomes.record(report);
    this.parts.metrics.recordCycle(report.result, report.durationMs / 1000, report.startedAt + report.durationMs);
    void this.history.record(report);
    this.log.write(report);
    return report;
  }
}
