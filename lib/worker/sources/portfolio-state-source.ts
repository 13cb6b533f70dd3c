import { PortfolioStateHash } from '../../../types/inputs';
import { formatIssues } from '../../../types/wire-number';
import { command, type BatchOutcome } from '../../redis/command-batch';
import type { RedisKeys } from '../../redis/keys';
import type { InputProblem } from './input-problem';
import type { PortfolioInputRead, PortfolioSourceDef } from './input-source';

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
  /** STALE_SEC: a state whose `timestamp` is older than this is not fresh. */
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

/**
 * The portfolio state input: one hash (`P28_PORTFOLIO_KEY`, `quantum:state:portfolio`) read in the
 * cycle's first batch, parsed by `PortfolioStateHash` and judged by `PortfolioStateTracker`. Any
 * cycle that does not run on a fresh state counts one `portfolio_state` fallback.
 */
export class PortfolioStateSource implements PortfolioInputRead<PortfolioEvaluation, 'portfolio_state'> {
  private readonly tracker: PortfolioStateTracker;

  constructor(private readonly options: PortfolioStateOptions & { key: string }) {
    this.tracker = new PortfolioStateTracker(options);
  }

  commands() {
    return [command('hgetall', this.options.key)];
  }

  async read(outcomes: Promise<readonly BatchOutcome[]>, nowMs: number, problems: InputProblem<'portfolio_state'>[]): Promise<PortfolioEvaluation> {
    const [outcome] = await outcomes;
    const raw = outcome!.error ?? (outcome!.value as Record<string, string>);
    const evaluation = this.tracker.evaluate(raw, nowMs);
    if (evaluation.source !== 'fresh') {
      problems.push({ inputType: 'portfolio_state', subject: 'portfolio', detail: `${evaluation.problem}; using ${evaluation.source === 'lkg' ? 'the last-known-good state' : 'none'}` });
    }
    return evaluation;
  }
}

export const portfolioStateSource = {
  name: 'portfolio_state',
  scope: 'portfolio',
  staleLabels: ['portfolio_state'],
  create: (s: { keys: RedisKeys; staleSec: number; maxLkgAgeSec: number }) =>
    new PortfolioStateSource({ key: s.keys.portfolioState, staleSec: s.staleSec, maxLkgAgeSec: s.maxLkgAgeSec }),
} as const satisfies PortfolioSourceDef<PortfolioEvaluation, 'portfolio_state', { keys: RedisKeys; staleSec: number; maxLkgAgeSec: number }>;
