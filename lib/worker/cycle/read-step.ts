import { CauseLog } from '../../cause-log';
import type { Logger } from '../../logger';
import type { PortfolioEvaluation, PortfolioSource } from '../sources/portfolio-state-source';
import type { PortfolioReader } from '../input-reader';
import type { WorkerMetrics } from '../worker-metrics';
import { countFallbacks, type CycleContext } from './cycle-context';
import type { CycleMode } from './cycle-mode';
import type { HeartbeatStep } from './heartbeat-step';
import { redisStep } from './redis-step';

export interface ReadStepOptions {
  reader: PortfolioReader;
  cycleMode: CycleMode;
  heartbeat: Pick<HeartbeatStep, 'note'>;
  metrics: WorkerMetrics;
  logger: Logger;
}

/**
 * The read step: the first read of a cycle. The leader reads the mode override, the mode audit
 * tail, the heartbeat and the portfolio-wide inputs (the portfolio state; heat, fetched meanwhile),
 * and lists the keys of the per-symbol inputs; it settles the mode, counts the inputs' fallbacks and
 * hands on the portfolio state (fresh, last-known-good or none) and heat. A stand-by reads only the
 * override and the heartbeat.
 */
export class ReadStep {
  /** Fallbacks of the portfolio state, logged once per cause. */
  private readonly portfolioLog: CauseLog;

  constructor(private readonly options: ReadStepOptions) {
    this.portfolioLog = new CauseLog(options.logger);
  }

  async run(ctx: CycleContext): Promise<void> {
    const { reader, heartbeat, cycleMode, metrics, logger } = this.options;
    const head = await redisStep('read inputs', () => reader.readHead(ctx.nowMs));
    ctx.head = head;
    ctx.report.scanPages = head.scanPages;
    heartbeat.note(head.heartbeat);
    cycleMode.settle(ctx, head.override, head.auditTail);
    for (const key of head.invalidKeys) ctx.report.skipped.push({ symbol: key, reason: 'snapshot key does not name a valid symbol' });
    countFallbacks(metrics, logger, ctx.report, head.problems);
    this.settlePortfolio(ctx, head.inputs.portfolio_state);
    ctx.report.heat = head.inputs.heat;
    ctx.heat = head.inputs.heat.value;
  }

  /** A stand-by's read: it still follows the override, so its /health and p28_enforce_mode tell the truth. */
  async runStandby(ctx: CycleContext): Promise<void> {
    const read = await redisStep('read mode override', () => this.options.reader.readStandby());
    this.options.heartbeat.note(read.heartbeat);
    this.options.cycleMode.settle(ctx, read.override);
  }

  /** The portfolio state the cycle runs on (fresh or last-known-good), or none; its fallback is counted with the others. */
  private settlePortfolio(ctx: CycleContext, portfolio: PortfolioEvaluation): void {
    const { report } = ctx;
    report.portfolio = { source: portfolio.source };
    if (portfolio.state) {
      report.portfolio.equityUsd = portfolio.state.equity_usd;
      report.portfolio.timestamp = portfolio.state.timestamp;
    }
    if (portfolio.ageSec !== undefined) report.portfolio.ageSec = portfolio.ageSec;
    if (portfolio.problem) report.portfolio.problem = portfolio.problem;
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
}
