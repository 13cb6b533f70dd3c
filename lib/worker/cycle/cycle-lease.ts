import type { Fence } from '../../redis/fenced-write';
import type { CycleReport, WorkerRole } from '../cycle-report';
import type { LeaderLease } from '../leader-lease';
import type { WorkerMetrics } from '../worker-metrics';
import { redisStep } from './redis-step';

/**
 * The leader lease as a cycle sees it: taken or renewed at the start of every cycle, checked again
 * before the writes (a stalled process may have lost it), given up when Redis fences this replica's
 * writes out, and released at stop. `p28_leader` follows it.
 */
export class CycleLease {
  constructor(
    private readonly lease: LeaderLease,
    private readonly metrics: WorkerMetrics,
  ) {}

  /** This replica's role as of its last lease check. */
  get role(): WorkerRole {
    return this.lease.isLeader ? 'leader' : 'standby';
  }

  /** The fence of this replica's tenure, which its writes carry; undefined without one. */
  get fence(): Fence | undefined {
    return this.lease.fence;
  }

  /** Takes or renews the lease; resolves to whether this replica leads this cycle. */
  async hold(report: CycleReport): Promise<boolean> {
    const leader = await redisStep('lease', () => this.lease.hold());
    report.role = leader ? 'leader' : 'standby';
    this.metrics.setLeader(leader);
    return leader;
  }

  /**
   * Whether this replica may still write: when the process stalled for longer than the lease TTL
   * since the lease was confirmed, another replica may lead by now, so the cycle's results are
   * dropped rather than written and the cycle ends as a stand-by.
   */
  stillLeads(report: CycleReport): boolean {
    if (this.lease.isLeader) return true;
    this.standBy(report);
    return false;
  }

  /**
   * Writes were refused in Redis because a newer tenure holds the lease (fencing): they did not
   * land, nothing failed, and this replica stands by.
   */
  fencedOut(report: CycleReport, refused: number): void {
    report.fenced = (report.fenced ?? 0) + refused;
    this.lease.lost(`${refused} writes refused by fencing: a newer leader holds the lease`);
  }

  /** Ends the cycle as a stand-by's. */
  standBy(report: CycleReport): void {
    report.role = 'standby';
    report.result = 'standby';
    this.metrics.setLeader(false);
  }

  /** Releases the lease if this replica holds it. */
  async release(): Promise<void> {
    await this.lease.release();
    this.metrics.setLeader(false);
  }
}
