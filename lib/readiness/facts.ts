import type { RecordedCycle } from '../../types/cycle-history-entry';
import type { DecisionTally } from './decision-tally';

/** A violation stream entry: which symbol, when (epoch ms). */
export interface ViolationSeen {
  symbol: string;
  tsMs: number;
}

/** Everything read for the window. */
export interface ReadinessFacts {
  /** Cycles recorded in the window, oldest first. */
  cycles: readonly RecordedCycle[];
  /** The latest cycle recorded before the window, if any: the history reaches back to the window's start. */
  cycleBeforeWindow?: RecordedCycle;
  /** The decisions of the window, tallied (`DecisionTally`). */
  decisions: DecisionTally;
  violations: readonly ViolationSeen[];
  /** The budget hashes in Redis now. */
  budgets: ReadonlyArray<Record<string, string>>;
  /** The value of the run-time override key, or null when unset. */
  modeOverride: string | null;
}

/** The cycles run as leader, and every failed cycle whatever role it recorded. */
export const leaderCycles = (facts: ReadinessFacts): RecordedCycle[] => facts.cycles.filter((c) => c.role === 'leader' || c.result === 'failed');
