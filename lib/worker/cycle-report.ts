import type { BudgetHash } from '../../types/budget-hash';
import type { Mode } from '../../types/mode';
import type { ViolationEvent } from '../../types/violation-event';
import type { WriteFailure } from './budget-writer';
import type { HeatReading } from './sources/heat-source';
import { INPUT_SOURCES, staleLabelsOf, type StaleInputLabel } from './sources/index';
import type { PortfolioSource } from './sources/portfolio-state-source';
import type { ModeSource } from './mode-switch';

/** The label of an invalid run-time mode override (`P28_MODE` used); every other label is an input source's. */
const MODE_OVERRIDE = 'mode_override';
export type StaleInputType = StaleInputLabel | typeof MODE_OVERRIDE;

/** The inputs whose fallbacks `p28_stale_input_total` counts, one label value each: the sources' labels, then the mode override's. */
export const STALE_INPUT_TYPES: readonly StaleInputType[] = Object.freeze([...(staleLabelsOf(INPUT_SOURCES) as StaleInputLabel[]), MODE_OVERRIDE]);

/** How a cycle ended; the label values of `p28_cycles_total`. */
export const CYCLE_RESULTS = ['ok', 'skipped', 'failed', 'standby'] as const;
export type CycleResult = (typeof CYCLE_RESULTS)[number];

export type WorkerRole = 'leader' | 'standby';

/** What one cycle read, computed, wrote and skipped. */
export interface CycleReport {
  result: CycleResult;
  role: WorkerRole;
  /** The effective mode (before the canary list is applied per symbol). */
  mode: Mode;
  modeSource: ModeSource;
  /** Epoch ms at the start of the cycle, from the worker's clock. */
  startedAt: number;
  durationMs: number;
  portfolio: {
    source: PortfolioSource;
    equityUsd?: number;
    /** Epoch seconds of the state used. */
    timestamp?: number;
    ageSec?: number;
    /** Why the state in Redis was not used as it is. */
    problem?: string;
  };
  /** Absent on a stand-by and when the cycle failed before reading it. */
  heat?: HeatReading;
  /** Symbols in the universe of the cycle (held, configured and tracked, after the cap). */
  symbols: number;
  /** Symbols left out by P28_MAX_SYMBOLS. */
  overCap?: number;
  scanPages: number;
  /** The budget hashes computed this cycle. */
  budgets: BudgetHash[];
  /** Symbols whose hash was written with its TTL. */
  written: string[];
  /** Violations appended to the stream this cycle (a lasting one only every VIOLATION_REPUBLISH_SEC). */
  violations: ViolationEvent[];
  skipped: { symbol: string; reason: string }[];
  /** Inputs replaced by their fallback this cycle, per `p28_stale_input_total` label. */
  staleInputs: Partial<Record<StaleInputType, number>>;
  writeFailures: WriteFailure[];
  /** Writes Redis refused because a newer leader's tenure holds the lease (fencing); not failures. */
  fenced?: number;
  /**
   * Positions the cycle could not vouch for, by `position_status`, and why the positions feed
   * was judged incomplete when it was. Absent when the cycle read no symbols.
   */
  positions?: { stale: number; unknown: number; invalid: number; feedProblem?: string };
  /** Set when the cycle failed as a whole. */
  error?: string;
  /**
   * Set whenever `result` is `failed`: a short name of why (`NOPERM`, `OOM`, `READONLY`, `TIMEOUT`,
   * `CONNECTION`, ... from `redisErrorCause`, or `INTERNAL` for an unexpected error), for /health.
   */
  cause?: string;
}
