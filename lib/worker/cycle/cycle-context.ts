import type { Mode } from '../../../types/mode';
import type { PortfolioStateHash } from '../../../types/inputs';
import type { BudgetWrite, SymbolInputs } from '../../engine/budget-record';
import type { RedisCommand } from '../../redis/command-batch';
import type { Logger } from '../../logger';
import type { CycleHead } from '../input-reader';
import type { InputProblem } from '../sources/input-problem';
import type { CycleReport, StaleInputType, WorkerRole } from '../cycle-report';
import type { ModeSource } from '../mode-switch';
import type { WorkerMetrics } from '../worker-metrics';

/**
 * One cycle as its steps (read, universe, compute, violations, write, heartbeat) hand it on: the
 * report it ends with, and what each step leaves for the next. Every field starts empty, so a step
 * finds the defaults when the cycle ended before the step that fills them.
 */
export interface CycleContext {
  readonly report: CycleReport;
  /** Epoch ms at the start of the cycle (`report.startedAt`): every age of the cycle is judged at it. */
  readonly nowMs: number;
  /** `performance.now()` at the start of the cycle. */
  readonly startedPerf: number;
  /** Read step: the first read of the cycle (mode override, portfolio state, heartbeat, SCANs). */
  head: CycleHead | undefined;
  /** Read step: the cycle's effective mode and the mode audit entry to write with the budgets. */
  mode: Mode;
  audit: RedisCommand[];
  /** Read step: the portfolio state the cycle runs on (fresh or last-known-good); undefined when there is none. */
  portfolio: PortfolioStateHash | undefined;
  /** Read step: portfolio heat. */
  heat: number;
  /** Universe step: every symbol's inputs. */
  inputs: SymbolInputs[];
  /** Compute step: the budgets and violations of every symbol. */
  writes: BudgetWrite[];
  /** Violations step: the writes with only the violations due on the stream this cycle. */
  announce: BudgetWrite[];
  /** Write step: the symbols whose violation reached the stream. */
  published: Set<string>;
}

/** A cycle's context and its report before any step ran; a cycle that ends here is `failed`. */
export function newCycleContext(start: { nowMs: number; startedPerf: number; role: WorkerRole; mode: Mode; modeSource: ModeSource }): CycleContext {
  const report: CycleReport = {
    result: 'failed',
    role: start.role,
    mode: start.mode,
    modeSource: start.modeSource,
    startedAt: start.nowMs,
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
  return {
    report,
    nowMs: start.nowMs,
    startedPerf: start.startedPerf,
    head: undefined,
    mode: start.mode,
    audit: [],
    portfolio: undefined,
    heat: 0,
    inputs: [],
    writes: [],
    announce: [],
    published: new Set(),
  };
}

/** Counts an input replaced by its fallback, in the report and in `p28_stale_input_total`. */
export function countStale(metrics: WorkerMetrics, report: CycleReport, inputType: StaleInputType): void {
  report.staleInputs[inputType] = (report.staleInputs[inputType] ?? 0) + 1;
  metrics.countStale(inputType);
}

/** Counts each input fallback of `problems` (see `countStale`), and logs it at debug. */
export function countFallbacks(metrics: WorkerMetrics, logger: Logger, report: CycleReport, problems: readonly InputProblem<StaleInputType>[]): void {
  for (const p of problems) {
    countStale(metrics, report, p.inputType);
    logger.debug({ inputType: p.inputType, subject: p.subject, detail: p.detail }, 'input fallback');
  }
}
