import { PortfolioStateHash } from '../../types/inputs';
import { formatIssues } from '../../types/wire-number';

/**
 * Which portfolio state a cycle uses. `fresh`: the one in Redis, younger than STALE_SEC.
 * `lkg`: the last state that was fresh when read, standing in while it is at most MAX_LKG_AGE_SEC
 * old. `none`: neither; the cycle writes no budgets.
 */
export type PortfolioSource = 'fresh' | 'lkg' | 'none';

export interface PortfolioEvaluation {
  source: PortfolioSource;
  /** The state the cycle uses (absent for `none`). */
  state?: PortfolioStateHash;
  /** Age in seconds of the state used (or of the rejected one, when it had a timestamp). */
  ageSec?: number;
  /** Why the state in Redis was not used as it is: missing, invalid, stale or from the future. */
  problem?: string;
}

export interface PortfolioStateOptions {
  /** STALE_SEC. */
  staleSec: number;
  /** MAX_LKG_AGE_SEC; 0 = never stand in. */
  maxLkgAgeSec: number;
}

/**
 * Judges the portfolio state hash read in a cycle and keeps the last-known-good one. A timestamp more
 * than STALE_SEC in the future is rejected too: it is a unit error (milliseconds) or a broken clock,
 * and would otherwise look fresh for ever.
 */
export class PortfolioStateTracker {
  private lastKnownGood: PortfolioStateHash | undefined;

  constructor(private readonly options: PortfolioStateOptions) {}

  /** `raw` is the HGETALL result (an empty object when the key is missing) or the read's error. */
  evaluate(raw: Record<string, string> | Error, nowMs: number): PortfolioEvaluation {
    const nowSec = nowMs / 1000;
    const current = this.judge(raw, nowSec);
    if ('state' in current) {
      this.lastKnownGood = current.state;
      return { source: 'fresh', state: current.state, ageSec: current.ageSec };
    }
    const lkg = this.lastKnownGood;
    if (lkg && this.options.maxLkgAgeSec > 0) {
      const ageSec = Math.max(0, nowSec - lkg.timestamp);
      if (ageSec <= this.options.maxLkgAgeSec) return { source: 'lkg', state: lkg, ageSec, problem: current.problem };
    }
    const evaluation: PortfolioEvaluation = { source: 'none', problem: current.problem };
    if (current.ageSec !== undefined) evaluation.ageSec = current.ageSec;
    return evaluation;
  }

  private judge(
    raw: Record<string, string> | Error,
    nowSec: number,
  ): { state: PortfolioStateHash; ageSec: number } | { problem: string; ageSec?: number } {
    if (raw instanceof Error) return { problem: `unreadable: ${raw.message}` };
    if (Object.keys(raw).length === 0) return { problem: 'missing' };
    const parsed = PortfolioStateHash.safeParse(raw);
    if (!parsed.success) return { problem: `invalid: ${formatIssues(parsed.error).join('; ')}` };
    const state = parsed.data;
    const age = nowSec - state.timestamp;
    if (age < -this.options.staleSec) return { ageSec: age, problem: `timestamp ${state.timestamp} is ${Math.round(-age)} s in the future` };
    const ageSec = Math.max(0, age);
    if (ageSec > this.options.staleSec) return { ageSec, problem: `stale: ${Math.round(ageSec)} s old, limit ${this.options.staleSec} s` };
    return { state, ageSec };
  }
}
