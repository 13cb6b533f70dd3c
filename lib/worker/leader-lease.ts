import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { withScripts, type ScriptCommands } from '../redis/lua-scripts';
import { silentLogger, type Logger } from '../logger';
import type { RedisClient } from '../redis/client';
import type { Fence } from '../redis/fenced-write';

export interface LeaderLeaseOptions {
  /** The lease key (`RedisKeys.workerLease`). */
  key: string;
  /** This replica's name (P28_INSTANCE_ID); a random suffix keeps two replicas with the same name apart. */
  instanceId: string;
  /** Lease time to live in ms (LEASE_TTL_MS); a stand-by takes over within about this long after the leader stops renewing. */
  ttlMs: number;
  logger?: Logger;
}

/**
 * A leader lease among worker replicas, held in one Redis key whose value names the holder.
 * Every cycle one script takes the lease if free (`SET NX PX`) or renews it if it carries this
 * replica's token (compare-and-pexpire); release on shutdown is compare-and-delete, so a replica can
 * never extend or delete a lease that has passed to another. Because the token, not local state,
 * decides, a holder whose SET or renewal timed out but was applied by Redis later keeps leading. When the leader dies or stalls, the key
 * expires after `ttlMs` and the next stand-by cycle takes it.
 *
 * Locally, leadership is also dropped once `ttlMs` has passed since the last confirmed renewal: a
 * leader cut off from Redis must not believe it still leads after the key could have expired.
 */
export class LeaderLease {
  /** The value stored in the lease key while this replica holds it. */
  readonly token: string;
  private readonly client: RedisClient & ScriptCommands;
  private readonly logger: Logger;
  private leader = false;
  private acquisitions = 0;
  /** performance.now() at which the lease was last confirmed. */
  private confirmedAt = 0;
  /** The epoch of this replica's current (or last) tenure: Redis TIME in µs when it took the lease. */
  private tenureEpoch: string | undefined;
  /**
   * Whether leadership was last dropped for want of a confirmation (a stall): only then is finding
   * its own token on the lease "after a stall". A stand-by whose take-over reply came late took a
   * free lease, and says so.
   */
  private stalled = false;

  constructor(
    client: RedisClient,
    private readonly options: LeaderLeaseOptions,
  ) {
    this.client = withScripts(client);
    this.logger = options.logger ?? silentLogger;
    this.token = `${options.instanceId}/${randomBytes(6).toString('hex')}`;
  }

  /** Whether this replica held the lease at its last check, and that check is younger than the TTL. */
  get isLeader(): boolean {
    this.dropIfUnconfirmed();
    return this.leader;
  }

  /**
   * How many times this replica has acquired the lease. It changes whenever another replica may
   * have led since this one last did, so state that only holds while nobody else writes (what the
   * budget writer knows of the hashes' fields) is dropped when it does.
   */
  get term(): number {
    return this.acquisitions;
  }

  /**
   * The fencing token of this replica's tenure, for writes checked in Redis (`fenced-write-1.lua`):
   * its epoch, and the lease's value while this tenure lasts. Undefined before the lease was held.
   */
  get fence(): Fence | undefined {
    if (this.tenureEpoch === undefined) return undefined;
    return { epoch: this.tenureEpoch, leaseKey: this.options.key, leaseValue: `${this.token}/${this.tenureEpoch}` };
  }

  /**
   * Called when a write was refused because a newer tenure holds the lease: this replica stands by
   * at once instead of waiting for its own lease check.
   */
  lost(why: string): void {
    this.setLeader(false, why);
  }

  /**
   * Takes the lease if free, or renews it if held. Resolves to whether this replica holds it now;
   * rejects when Redis cannot be asked (the caller then writes nothing this cycle).
   */
  async hold(): Promise<boolean> {
    const started = performance.now();
    try {
      const [held, epoch] = await this.client.p28HoldLease(this.options.key, this.token, this.options.ttlMs);
      if (held !== 0) this.tenureEpoch = epoch;
      if (held === 0) this.setLeader(false, 'lease held by another replica or expired');
      else this.setLeader(true, held === 2 && !this.leader && this.stalled ? 'own token found on the lease after a stall' : 'lease acquired');
      if (this.leader) this.confirmedAt = started;
      return this.leader;
    } catch (error) {
      this.dropIfUnconfirmed();
      throw error;
    }
  }

  /** Deletes the lease if this replica holds it; resolves to whether it did. Never rejects. */
  async release(): Promise<boolean> {
    const wasLeader = this.leader;
    this.leader = false;
    try {
      const released = (await this.client.p28ReleaseLease(this.options.key, this.token)) === 1;
      if (released) this.logger.info({ key: this.options.key, token: this.token }, 'lease released');
      return released;
    } catch (error) {
      if (wasLeader) {
        this.logger.warn({ key: this.options.key, err: error }, 'could not release the lease; it expires by itself');
      }
      return false;
    }
  }

  private dropIfUnconfirmed(): void {
    if (this.leader && performance.now() - this.confirmedAt > this.options.ttlMs) {
      this.stalled = true;
      this.setLeader(false, 'lease not confirmed within its ttl');
    }
  }

  private setLeader(leader: boolean, why: string): void {
    if (leader === this.leader) return;
    this.leader = leader;
    if (leader) this.stalled = false;
    if (leader) this.acquisitions += 1;
    const fields = { key: this.options.key, token: this.token, ttlMs: this.options.ttlMs };
    if (leader) this.logger.info(fields, `leader: ${why}`);
    else this.logger.warn(fields, `stand-by: ${why}`);
  }
}
