import type { WorkerConfig } from '../../config';
import type { Logger } from '../../logger';
import { computeBudgets } from '../../engine/budget-record';
import { yieldToEventLoop } from '../event-loop-slices';
import type { ModeSwitch } from '../mode-switch';
import type { CycleContext } from './cycle-context';

/** Symbols per slice of the budget computation: a few milliseconds of CPU, then the event loop's turn. */
const COMPUTE_SLICE_SYMBOLS = 500;

export interface ComputeStepOptions {
  config: Pick<WorkerConfig, 'budget'>;
  modeSwitch: ModeSwitch;
  logger: Logger;
}

/**
 * The compute step: every symbol's budget (`computeBudgets`) from its inputs, the portfolio state's
 * equity, heat and the mode of the symbol (the canary list applied), computed in slices of
 * `COMPUTE_SLICE_SYMBOLS` that yield to the event loop between them. A symbol whose budget cannot
 * be computed is skipped and logged.
 */
export class ComputeStep {
  constructor(private readonly options: ComputeStepOptions) {}

  async run(ctx: CycleContext): Promise<void> {
    const { config, modeSwitch, logger } = this.options;
    const { report, inputs } = ctx;
    const equityUsd = ctx.portfolio!.equity_usd;
    for (let from = 0; from < inputs.length; from += COMPUTE_SLICE_SYMBOLS) {
      if (from > 0) await yieldToEventLoop();
      const computed = computeBudgets(inputs.slice(from, from + COMPUTE_SLICE_SYMBOLS), {
        equityUsd,
        portfolioHeat: ctx.heat,
        params: config.budget,
        modeOf: (symbol) => modeSwitch.symbolMode(symbol, ctx.mode),
        timestamp: Math.floor(ctx.nowMs / 1000),
      });
      for (const rejected of computed.rejected) {
        report.skipped.push(rejected);
        logger.error(rejected, 'budget not computable; symbol skipped');
      }
      for (const write of computed.writes) {
        report.budgets.push(write.record);
        ctx.writes.push(write);
      }
    }
  }
}
