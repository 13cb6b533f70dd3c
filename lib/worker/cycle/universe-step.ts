import { CauseLog } from '../../cause-log';
import type { WorkerConfig } from '../../config';
import type { Logger } from '../../logger';
import { symbolUniverse } from '../../engine/symbol-universe';
import type { CycleReport } from '../cycle-report';
import type { CycleHead, PortfolioReader, SymbolsRead } from '../input-reader';
import type { WorkerMetrics } from '../worker-metrics';
import { countFallbacks, type CycleContext } from './cycle-context';
import { redisStep } from './redis-step';

export interface UniverseStepOptions {
  config: Pick<WorkerConfig, 'extraSymbols' | 'maxSymbols'>;
  reader: PortfolioReader;
  metrics: WorkerMetrics;
  logger: Logger;
}

/**
 * The universe step: the symbols that get a budget (held, configured and tracked, capped by
 * P28_MAX_SYMBOLS, the excess counted and logged on change), then every one's position and market
 * state and the stress of every cluster named. Unknown positions and keys named in another case are
 * logged once per change, never on every cycle.
 */
export class UniverseStep {
  /** Symbols past P28_MAX_SYMBOLS in the last leader cycle, to log only when that changes. */
  private lastOverCap = 0;
  /** Unknown positions (stale, an incomplete feed, invalid numbers), logged once per change. */
  private readonly positionsLog: CauseLog;
  /** Input keys named in another case (`btcusdt`), logged once per change of the set. */
  private readonly caseFoldedLog: CauseLog;
  private lastPositions: CycleReport['positions'];

  constructor(private readonly options: UniverseStepOptions) {
    this.positionsLog = new CauseLog(options.logger);
    this.caseFoldedLog = new CauseLog(options.logger);
  }

  /** The unknown positions of the last cycle that read symbols, for /health. */
  get positions(): CycleReport['positions'] {
    return this.lastPositions;
  }

  async run(ctx: CycleContext): Promise<void> {
    const head = ctx.head!;
    const symbols = this.buildUniverse(ctx.report, head);
    this.logCaseFoldedKeys(head.caseFoldedKeys);
    const fresh = ctx.report.portfolio.source === 'fresh' ? ctx.portfolio : undefined;
    const read = await redisStep('read symbols', () => this.options.reader.readSymbols(symbols, ctx.nowMs, fresh));
    ctx.report.skipped.push(...read.skipped);
    countFallbacks(this.options.metrics, this.options.logger, ctx.report, read.problems);
    this.notePositions(ctx.report, read);
    ctx.inputs = read.inputs;
  }

  private buildUniverse(report: CycleReport, head: CycleHead): string[] {
    const { config, metrics, logger } = this.options;
    const universe = symbolUniverse({ held: head.symbols, configured: config.extraSymbols, tracked: head.trackedSymbols }, config.maxSymbols);
    report.symbols = universe.symbols.length;
    report.overCap = universe.overCap.length;
    if (universe.overCap.length > 0) metrics.symbolsOverCap.inc(universe.overCap.length);
    if (universe.overCap.length !== this.lastOverCap) {
      if (universe.overCap.length > 0) {
        logger.warn(
          { maxSymbols: config.maxSymbols, overCap: universe.overCap.length, firstLeftOut: universe.overCap.slice(0, 20) },
          `symbol universe exceeds P28_MAX_SYMBOLS=${config.maxSymbols}: ${universe.overCap.length} symbols get no budget (the gate fails open for them)`,
        );
      } else {
        logger.info({ maxSymbols: config.maxSymbols }, 'symbol universe within P28_MAX_SYMBOLS again');
      }
      this.lastOverCap = universe.overCap.length;
    }
    return universe.symbols;
  }

  private logCaseFoldedKeys(keys: readonly string[]): void {
    if (keys.length === 0) return this.caseFoldedLog.resolved({}, 'no input key names a symbol in lower case any more');
    const sorted = [...keys].sort();
    this.caseFoldedLog.problem(sorted.slice(0, 50).join(','), { keys: sorted.slice(0, 50), count: sorted.length }, 'input keys name symbols in another case; read as the upper-case symbol');
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
}
