/** One cached hash. */
export interface TrackedEntry {
  fields: Record<string, string>;
  /** The coherence epoch it was stored in; -1 when it was read while tracking was not armed. */
  epoch: number;
  /** When Redis expires the key (performance.now() ms); Infinity without a TTL. */
  deadline: number;
}

/**
 * The copies a `TrackingCache` holds: at most `maxEntries` (the oldest goes first), each with its
 * epoch and TTL deadline, and the sequence of invalidation messages that keeps a read in flight
 * from storing what an invalidation or a server flush has since made stale.
 */
export class TrackedEntries {
  private readonly entries = new Map<string, TrackedEntry>();
  /** Sequence of invalidation messages, for reads in flight. */
  private seq = 0;
  private lastServerFlushSeq = 0;
  private readonly invalidatedAt = new Map<string, number>();
  private pendingReads = 0;

  constructor(private readonly maxEntries: number) {}

  /** The sequence a read starts at: what it may store is judged against it. */
  get sequence(): number {
    return this.seq;
  }

  /** The fields of `key` when it has a copy that `admit` accepts and whose TTL has not run out. */
  fields(key: string, admit: (entry: TrackedEntry) => boolean = () => true): Record<string, string> | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || !admit(entry)) return undefined;
    if (performance.now() >= entry.deadline) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.fields;
  }

  /** A read started: invalidations are remembered per key until none is in flight. */
  readStarted(): void {
    this.pendingReads += 1;
  }

  readEnded(): void {
    this.pendingReads -= 1;
    if (this.pendingReads === 0) this.invalidatedAt.clear();
  }

  /** Puts a read's answer in place of the key's copy, not yet a hit; undefined when there is none to keep. */
  replace(key: string, fields: Record<string, string>, startSeq: number): TrackedEntry | undefined {
    if (this.changedSince(key, startSeq)) return undefined;
    this.entries.delete(key);
    // An empty answer: Redis has nothing under the key now (expired, deleted, or a server that
    // restarted empty), so neither has the cache.
    if (Object.keys(fields).length === 0) return undefined;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    const entry: TrackedEntry = { fields, epoch: -1, deadline: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    return entry;
  }

  /**
   * Gives a copy its TTL deadline and the epoch `trustedEpoch` says it is a hit in (-1: none),
   * unless a later read replaced it or an invalidation or a flush dropped it meanwhile.
   */
  settle(key: string, entry: TrackedEntry, ttlMs: number, startSeq: number, startedAt: number, trustedEpoch: () => number): void {
    if (this.entries.get(key) !== entry || this.changedSince(key, startSeq)) return;
    if (ttlMs === -2) {
      this.entries.delete(key);
      return;
    }
    entry.deadline = ttlMs >= 0 ? startedAt + ttlMs : Number.POSITIVE_INFINITY;
    entry.epoch = trustedEpoch();
  }

  /** An invalidation message naming `keys`: their copies go, and reads in flight of them store nothing. */
  invalidate(keys: readonly string[]): void {
    this.seq += 1;
    for (const key of keys) {
      this.entries.delete(key);
      if (this.pendingReads > 0) this.invalidatedAt.set(key, this.seq);
    }
  }

  /** A server flush (a null invalidation): every copy goes, and no read in flight stores anything. */
  serverFlushed(): void {
    this.seq += 1;
    this.lastServerFlushSeq = this.seq;
    this.entries.clear();
  }

  clear(): void {
    this.entries.clear();
  }

  /** Whether the key was invalidated, or the server flushed, after sequence `startSeq`. */
  private changedSince(key: string, startSeq: number): boolean {
    return this.lastServerFlushSeq > startSeq || (this.invalidatedAt.get(key) ?? -1) > startSeq;
  }
}
