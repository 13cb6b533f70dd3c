import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { silentLogger, type Logger } from '../logger';
import { TrackedEntries } from './tracked-entries';
import { TrackingSubscription, type TrackingCacheEvents } from './tracking-subscription';

export type { CacheFlushCause, TrackingCacheEvents } from './tracking-subscription';

export interface TrackingCacheOptions {
  /**
   * The connection reads go through. Tracking is switched on for it (BCAST, so the server tells
   * about every write under `prefix`, whoever reads it), re-armed after each of its reconnects.
   */
  data: Redis;
  /** A connection of the cache's own, used only to receive invalidations; `close()` ends it. */
  subscriber: Redis;
  /** Key prefix to track; only keys under it are ever cached. */
  prefix: string;
  /** Private channel the heartbeat travels on, from `data` to `subscriber`. */
  heartbeatChannel: string;
  /** How often a heartbeat is published, in ms. */
  heartbeatIntervalMs?: number;
  /**
   * Hits need a heartbeat sent at most this long ago (ms) to have come back: it bounds how far a
   * hit can trail a write should the subscriber stop receiving.
   */
  silenceMs?: number;
  /** Most entries kept; the oldest goes first. */
  maxEntries?: number;
  logger?: Logger;
  events?: TrackingCacheEvents;
}

export const TRACKING_CACHE_DEFAULTS = Object.freeze({
  // A heartbeat every 25 ms and a 100 ms allowance: a subscriber that went silent without a FIN
  // (a frozen proxy, a dead host) stops hits within about 100 ms, at 40 tiny PUBLISHes a second.
  heartbeatIntervalMs: 25,
  silenceMs: 100,
  // Budgets are per traded symbol; this bounds memory against requests naming many symbols.
  maxEntries: 10000,
});

/**
 * An in-process copy of hashes under one key prefix, kept coherent by Redis server-assisted
 * client-side caching (RESP2: `CLIENT TRACKING on REDIRECT <subscriber id> BCAST PREFIX`, with a
 * second connection subscribed to `__redis__:invalidate`).
 *
 * A copy counts as a hit only while coherence is proven: both connections are up, reach the same
 * server (`run_id`), tracking is armed for the subscriber's current id, and a heartbeat published
 * through the data connection at most `silenceMs` ago has come back through the subscriber (the
 * heartbeat trails every invalidation the server sent before it). Any close or
 * reconnect of either connection starts a new epoch, so earlier copies stop being hits; a read
 * whose key was invalidated or flushed while it was in flight is never stored; each copy keeps
 * its key's TTL deadline. Copies that are no longer hits stay available through `lastKnown`
 * (the owner decides whether an unreachable Redis justifies using them); an invalidation or a
 * server flush removes them entirely.
 *
 * The copies live in `TrackedEntries`; `TrackingSubscription` arms tracking, receives the
 * invalidations and runs the heartbeat.
 */
export class TrackingCache {
  private readonly data: Redis;
  private readonly prefix: string;
  private readonly entries: TrackedEntries;
  private readonly subscription: TrackingSubscription;

  constructor(options: TrackingCacheOptions) {
    this.data = options.data;
    this.prefix = options.prefix;
    this.entries = new TrackedEntries(options.maxEntries ?? TRACKING_CACHE_DEFAULTS.maxEntries);
    this.subscription = new TrackingSubscription({
      data: options.data,
      subscriber: options.subscriber,
      prefix: options.prefix,
      heartbeatChannel: options.heartbeatChannel,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? TRACKING_CACHE_DEFAULTS.heartbeatIntervalMs,
      silenceMs: options.silenceMs ?? TRACKING_CACHE_DEFAULTS.silenceMs,
      logger: options.logger ?? silentLogger,
      events: options.events ?? {},
      entries: this.entries,
    });
  }

  /** A random heartbeat channel name for one cache under `base`. */
  static heartbeatChannelUnder(base: string): string {
    return `${base}:${randomUUID()}`;
  }

  /** True while a hit can be trusted to be what Redis holds now (within invalidation latency). */
  get coherent(): boolean {
    return this.subscription.coherent;
  }

  /** The cached fields of `key` when they can be trusted, else undefined (a miss). */
  lookup(key: string): Record<string, string> | undefined {
    return this.entries.fields(key, (entry) => entry.epoch === this.subscription.epoch && this.coherent);
  }

  /**
   * The last fields read for `key` whose TTL has not run out, trusted or not: what Redis held
   * when it was last reachable, unless an invalidation has since removed it.
   */
  lastKnown(key: string): Record<string, string> | undefined {
    return this.entries.fields(key);
  }

  /**
   * Runs the owner's one read of `key` (`run`; `fieldsOf` turns its answer into the hash's fields)
   * and stores the fields, unless the key was invalidated or the server flushed while the read was
   * in flight. The key's PTTL is asked for beside it (sent at once, so the caller still waits for
   * one round trip) to keep the entry's TTL deadline. Returns the read's own promise: the caller
   * sees exactly what Redis answered.
   */
  read<T>(key: string, run: () => Promise<T>, fieldsOf: (answer: T) => Record<string, string>): Promise<T> {
    const startSeq = this.entries.sequence;
    const startEpoch = this.coherent ? this.subscription.epoch : -1;
    const startedAt = performance.now();
    const answer = run();
    if (this.subscription.closed || !key.startsWith(this.prefix)) return answer;
    this.entries.readStarted();
    const ttl = this.data.pttl(key);
    // The answer replaces the copy as soon as it arrives (it is what Redis holds, for `lastKnown`);
    // it becomes a hit once its TTL is known, which may never happen if Redis stops in between.
    // It is a hit only if coherence held from before the read until its TTL is known.
    answer
      .then(async (value) => {
        const fields = fieldsOf(value);
        const entry = this.subscription.closed ? undefined : this.entries.replace(key, fields, startSeq);
        if (entry === undefined) return;
        const ttlMs = await ttl;
        this.entries.settle(key, entry, ttlMs, startSeq, startedAt, () => (startEpoch === this.subscription.epoch && this.coherent ? startEpoch : -1));
      })
      .catch(() => undefined)
      .finally(() => this.entries.readEnded());
    ttl.catch(() => undefined);
    return answer;
  }

  /** Stops the heartbeat, drops every entry, switches tracking off (best effort) and ends the subscriber. */
  close(): void {
    if (this.subscription.closed) return;
    this.subscription.close();
    this.entries.clear();
  }
}
