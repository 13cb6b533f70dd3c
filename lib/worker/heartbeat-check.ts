import type { WorkerHeartbeat } from '../../types/worker-heartbeat';
import { SERVER_CLOCK_DEFAULTS } from '../redis/server-clock';
import type { KeyProblems } from './key-problems';

/** A heartbeat that was ignored because it lies ahead of Redis's clock. */
export interface FutureHeartbeat {
  /** How far ahead, in seconds, when last read. */
  aheadSec: number;
  /** The replica that wrote it. */
  leader: string;
}

export interface HeartbeatCheckOptions {
  /** Redis's clock in epoch ms (`ServerClock.now`). */
  now: () => number;
  problems: KeyProblems;
  /** The heartbeat key, named in the problem. */
  key: string;
  /** Default `SERVER_CLOCK_DEFAULTS.futureToleranceMs`. */
  toleranceMs?: number;
}

/**
 * Judges the heartbeat before it counts as "budgets were written then". A heartbeat from the
 * future (a leader whose host clock ran ahead, from a release that stamped with it) would hold
 * `budgets_age_sec` at 0 and `p28_budgets_written_timestamp_seconds` ahead, hiding an outage for as
 * long as the skew: it is invalid, counted as a key problem and named in /health, and budgets are
 * aged from the last valid heartbeat (or this replica's start).
 */
export class HeartbeatCheck {
  private readonly toleranceMs: number;
  private futureBeat: FutureHeartbeat | undefined;

  constructor(private readonly options: HeartbeatCheckOptions) {
    this.toleranceMs = options.toleranceMs ?? SERVER_CLOCK_DEFAULTS.futureToleranceMs;
  }

  /** Whether `beat` may be taken as the time budgets were last written. */
  accept(beat: WorkerHeartbeat): boolean {
    const aheadMs = beat.last_success_ts - this.options.now();
    if (aheadMs <= this.toleranceMs) {
      this.futureBeat = undefined;
      return true;
    }
    this.futureBeat = { aheadSec: Math.round(aheadMs / 100) / 10, leader: beat.leader };
    this.options.problems.note({ kind: 'heartbeat', problem: 'from_the_future', key: this.options.key, detail: `${this.futureBeat.aheadSec} s ahead of Redis's clock, written by ${beat.leader}` });
    return false;
  }

  /** The heartbeat last ignored as from the future; undefined once a valid one is read. */
  get future(): FutureHeartbeat | undefined {
    return this.futureBeat;
  }
}
