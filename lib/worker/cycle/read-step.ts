import { CauseLog } from '../../cause-log';
import type { Logger } from '../../logger';
import type { PortfolioStateTracker, PortfolioSource } from '../../engine/portfolio-state';
import type { CycleHead, PortfolioReader } from '../input-reader';
import type { HeatReader, HeatReading } from '../sources/heat-source';
import type { WorkerMetrics } from '../worker-metrics';
import { countStale, type CycleContext } from './cycle-context';
import type { CycleMode } from './cycle-mode';
import type { HeartbeatStep } from './heartbeat-step';
import { redisStep } from './redis-step';

export interface ReadStepOptions {
  reader: PortfolioReader;
  heat: HeatReader;
  portfolioState: PortfolioStateTracker;
  cycleMode: CycleMode;
  heartbeat: Pick<HeartbeatStep, 'note'>;
  metrics: WorkerMetrics;
  logger: Logger;
}

/**
 * The read step: the first read of a cycle. The leader reads the mode override, the mode audit
 * tail, the portfolio state and the heartbeat, lists the position and market state keys, and fetches
 * portfolio heat meanwhile; it settles the mode, the portfolio state (fresh, last-known-good or none)
 * and heat. A stand-by reads only the override and the heartbeat.
 */
export class ReadStep {
  /** Fallbacks of the portfolio state, logged once per cause. */
  private readonly portfolioLog: CauseLog;

  constructor(private readonly options: ReadStepOptions) {
    this.portfolioLog = new CauseLog(options.logger);
  }

  async run(ctx: CycleContext): Promise<void> {
    const { reader, heartbeat, cycleMode } = this.options;
    const heatReading = this.readHeat();
    const head = await redisStep('read inputs', () => reader.readHead());
    ctx.head = head;
    ctx.report.scanPages = head.scanPages;
    heartbeat.note(head.heartbeat);
    cycleMode.settle(ctx, head.override, head.auditTail);
    this.countInvalidSnapshotKeys(ctx, head.invalidKeys);
    this.settlePortfolio(ctx, head.portfolio);
    const heat = await heatReading;
    ctx.report.heat = heat;
    if (heat.source !== 'live') countStale(this.options.metrics, ctx.report, 'heat');
    ctx.heat = heat.value;
  }

  /** A stand-by's read: it still follows the override, so its /health and p28_enforce_mode tell the truth. */
  async runStandby(ctx: CycleContext): Promise<void> {
    const read = await redisStep('read mode override', () => this.options.reader.readStandby());
    this.options.heartbeat.note(read.heartbeat);
    this.options.cycleMode.settle(ctx, read.override);
  }

  private countInvalidSnapshotKeys(ctx: CycleContext, keys: readonly string[]): void {
    for (const key of keys) {
      ctx.report.skipped.push({ symbol: key, reason: 'snapshot key does not name a valid symbol' });
      countStale(this.options.metrics, ctx.report, 'position_snapshot');
    }
  }

  /** The portfolio state the cycle runs on (fresh or last-known-good), or none. */
  private settlePortfolio(ctx: CycleContext, raw: CycleHead['portfolio']): void {
    const { report } = ctx;
    const portfolio = this.options.portfolioState.evaluate(raw, ctx.nowMs);
    report.portfolio = { source: portfolio.source };
    if (portfolio.state) {
      report.portfolio.equityUsd = portfolio.state.equity_usd;
      report.portfolio.timestamp = portfolio.state.timestamp;
    }
    if (portfolio.ageSec !== undefined) report.portfolio.ageSec = portfolio.ageSec;
    if (portfolio.problem) report.portfolio.problem = portfolio.problem;
    if (portfolio.source !== 'fresh') countStale(this.options.metrics, report, 'portfolio_state');
    this.options.metrics.recordPortfolioSource(portfolio.source);
    this.logPortfolioChange(portfolio.source, portfolio.problem, portfolio.ageSec);
    ctx.portfolio = portfolio.state;
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
      return await this.options.heat.read();
    } catch (error) {
      return { value: 0, source: 'default', failure: 'unreachable', detail: (error as Error).message };
    }
  }
}
