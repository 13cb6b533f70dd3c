import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { silentLogger, type Logger } from '../logger';

/** Why the cache stopped trusting what it holds. */
export type CacheFlushCause = 'connection' | 'heartbeat' | 'server_mismatch' | 'server_flush';

/** Counters the owner of a cache wires to its metrics. */
export interface TrackingCacheEvents {
  /** Keys named by invalidation messages (one call per message). */
  invalidated?(keys: number): void;
  flushed?(cause: CacheFlushCause): void;
}

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
 * Silent for this many `silenceMs`, the subscriber is reconnected: a socket that died without a
 * FIN would otherwise wait for TCP keepalive, minutes to hours, before ioredis notices.
 */
const RECONNECT_AFTER_SILENCES = 10;

/** How often a failed set-up (a timeout, an ACL refusal, servers that differ) is tried again, in ms. */
const ARM_RETRY_MS = 1000;

const INVALIDATE_CHANNEL = '__redis__:invalidate';

interface Entry {
  fields: Record<string, string>;
  /** The coherence epoch it was stored in; -1 when it was read while tracking was not armed. */
  epoch: number;
  /** When Redis expires the key (performance.now() ms); Infinity without a TTL. */
  deadline: number;
}

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
 */
export class TrackingCache {
  private readonly data: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly heartbeatChannel: string;
  private readonly silenceMs: number;
  private readonly maxEntries: number;
  private readonly logger: Logger;
  private readonly events: TrackingCacheEvents;
  private readonly entries = new Map<string, Entry>();
  /** Bumped whenever coherence may have been lost or is newly established. */
  private epoch = 0;
  private armedEpoch = -1;
  /** Sequence of invalidation messages, for reads in flight. */
  private seq = 0;
  private lastServerFlushSeq = 0;
  private readonly invalidatedAt = new Map<string, number>();
  private pendingReads = 0;
  private subscriberId: number | undefined;
  private subscriberRunId: string | undefined;
  /** When the newest heartbeat that came back was sent (performance.now() ms). */
  private lastEchoSentAt = Number.NEGATIVE_INFINITY;
  /** When tracking was last armed: heartbeats sent before it prove nothing about it. */
  private armedAt = Number.POSITIVE_INFINITY;
  /** Heartbeats sent since one last came back. */
  private unechoed = 0;
  private readonly beatsPerSilence: number;
  private silent = false;
  private silentSince = 0;
  private beatInFlight = false;
  private arming = false;
  private lastArmAttemptAt = Number.NEGATIVE_INFINITY;
  private settingUp = false;
  private lastSetUpAttemptAt = Number.NEGATIVE_INFINITY;
  /** The last arming attempt found the two connections on different servers (counted once). */
  private mismatched = false;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;
  private readonly detach: Array<() => void> = [];

  constructor(options: TrackingCacheOptions) {
    // Invalidations are read as RESP2 pub/sub messages on the subscriber. Over RESP3 they arrive as
    // push frames this cache never sees, while heartbeats still flow: it would serve stale copies.
    for (const [role, client] of [['data', options.data], ['subscriber', options.subscriber]] as const) {
      if (client.options.protocol !== 2) throw new TypeError(`TrackingCache needs RESP2 connections (protocol: 2); the ${role} connection is not`);
    }
    this.data = options.data;
    this.subscriber = options.subscriber;
    this.prefix = options.prefix;
    this.heartbeatChannel = options.heartbeatChannel;
    this.silenceMs = options.silenceMs ?? TRACKING_CACHE_DEFAULTS.silenceMs;
    this.maxEntries = options.maxEntries ?? TRACKING_CACHE_DEFAULTS.maxEntries;
    this.logger = options.logger ?? silentLogger;
    this.events = options.events ?? {};

    this.listen(this.subscriber, 'messageBuffer', (channel: Buffer, payload: unknown) => this.onMessage(channel, payload));
    this.listen(this.subscriber, 'ready', () => void this.setUpSubscriber());
    this.listen(this.data, 'ready', () => void this.armTracking());
    for (const client of [this.data, this.subscriber]) {
      this.listen(client, 'close', () => this.lose());
      this.listen(client, 'reconnecting', () => this.lose());
    }
    const intervalMs = options.heartbeatIntervalMs ?? TRACKING_CACHE_DEFAULTS.heartbeatIntervalMs;
    this.beatsPerSilence = Math.max(1, Math.ceil(this.silenceMs / intervalMs));
    this.heartbeat = setInterval(() => this.beat(), intervalMs);
    this.heartbeat.unref();
    if (this.subscriber.status === 'ready') void this.setUpSubscriber();
  }

  /** A random heartbeat channel name for one cache under `base`. */
  static heartbeatChannelUnder(base: string): string {
    return `${base}:${randomUUID()}`;
  }

  /** True while a hit can be trusted to be what Redis holds now (within invalidation latency). */
  get coherent(): boolean {
    return this.armedEpoch === this.epoch && !this.closed && performance.now() - this.lastEchoSentAt <= this.silenceMs;
  }

  /** The cached fields of `key` when they can be trusted, else undefined (a miss). */
  lookup(key: string): Record<string, string> | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.epoch !== this.epoch || !this.coherent) return undefined;
    if (performance.now() >= entry.deadline) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.fields;
  }

  /**
   * The last fields read for `key` whose TTL has not run out, trusted or not: what Redis held
   * when it was last reachable, unless an invalidation has since removed it.
   */
  lastKnown(key: string): Record<string, string> | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (performance.now() >= entry.deadline) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.fields;
  }

  /**
   * Runs the owner's one read of `key` (`run`; `fieldsOf` turns its answer into the hash's fields)
   * and stores the fields, unless the key was invalidated or the server flushed while the read was
   * in flight. The key's PTTL is asked for beside it (sent at once, so the caller still waits for
   * one round trip) to keep the entry's TTL deadline. Returns the read's own promise: the caller
   * sees exactly what Redis answered.
   */
  read<T>(key: string, run: () => Promise<T>, fieldsOf: (answer: T) => Record<string, string>): Promise<T> {
    const startSeq = this.seq;
    const startEpoch = this.coherent ? this.epoch : -1;
    const startedAt = performance.now();
    const answer = run();
    if (this.closed || !key.startsWith(this.prefix)) return answer;
    this.pendingReads += 1;
    const ttl = this.data.pttl(key);
    // The answer replaces the copy as soon as it arrives (it is what Redis holds, for `lastKnown`);
    // it becomes a hit once its TTL is known, which may never happen if Redis stops in between.
    answer
      .then(async (value) => {
        const entry = this.replace(key, fieldsOf(value), startSeq);
        if (entry === undefined) return;
        const ttlMs = await ttl;
        this.settle(key, entry, ttlMs, startSeq, startEpoch, startedAt);
      })
      .catch(() => undefined)
      .finally(() => {
        this.pendingReads -= 1;
        if (this.pendingReads === 0) this.invalidatedAt.clear();
      });
    ttl.catch(() => undefined);
    return answer;
  }

  /** Stops the heartbeat, drops every entry, switches tracking off (best effort) and ends the subscriber. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const off of this.detach.splice(0)) off();
    this.entries.clear();
    // Neither is waited for: on a stopped Redis the subscriber's FIN is never answered and a
    // command waits for its timeout. Tracking ends with the data connection when that is closed.
    this.subscriber.disconnect();
    if (this.data.status === 'ready') this.data.client('TRACKING', 'off').catch(() => undefined);
  }

  private listen(client: Redis, event: string, handler: Parameters<Redis['on']>[1]): void {
    client.on(event, handler);
    this.detach.push(() => client.off(event, handler));
  }

  /** Whether the key was invalidated, or the server flushed, after sequence `startSeq`. */
  private changedSince(key: string, startSeq: number): boolean {
    return this.lastServerFlushSeq > startSeq || (this.invalidatedAt.get(key) ?? -1) > startSeq;
  }

  /** Puts a read's answer in place of the key's copy, not yet a hit; undefined when there is none to keep. */
  private replace(key: string, fields: Record<string, string>, startSeq: number): Entry | undefined {
    if (this.closed || this.changedSince(key, startSeq)) return undefined;
    this.entries.delete(key);
    // An empty answer: Redis has nothing under the key now (expired, deleted, or a server that
    // restarted empty), so neither has the cache.
    if (Object.keys(fields).length === 0) return undefined;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    const entry: Entry = { fields, epoch: -1, deadline: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    return entry;
  }

  /** Gives a copy its TTL deadline and, if coherence held from before the read until now, makes it a hit. */
  private settle(key: string, entry: Entry, ttlMs: number, startSeq: number, startEpoch: number, startedAt: number): void {
    // Replaced by a later read, or dropped by an invalidation or a flush meanwhile.
    if (this.entries.get(key) !== entry || this.changedSince(key, startSeq)) return;
    if (ttlMs === -2) {
      this.entries.delete(key);
      return;
    }
    entry.deadline = ttlMs >= 0 ? startedAt + ttlMs : Number.POSITIVE_INFINITY;
    entry.epoch = startEpoch === this.epoch && this.coherent ? startEpoch : -1;
  }

  private onMessage(channel: Buffer, payload: unknown): void {
    const name = channel.toString();
    if (name === this.heartbeatChannel) {
      // The heartbeat carries its send time: every invalidation the server sent before it has now
      // been handled, so copies are current as of that time (not of when it was read here).
      const sentAt = Number(String(payload));
      if (!(sentAt > this.lastEchoSentAt) || sentAt < this.armedAt) return;
      this.lastEchoSentAt = sentAt;
      this.unechoed = 0;
      if (this.silent) {
        this.silent = false;
        this.logger.info('local cache heartbeat back: hits resume');
      }
      return;
    }
    if (name !== INVALIDATE_CHANNEL) return;
    this.seq += 1;
    if (payload === null || !Array.isArray(payload)) {
      // A null invalidation is FLUSHALL/FLUSHDB (or the server dropping its tracking table).
      this.lastServerFlushSeq = this.seq;
      this.entries.clear();
      this.events.flushed?.('server_flush');
      return;
    }
    for (const raw of payload as Buffer[]) {
      const key = raw.toString();
      this.entries.delete(key);
      if (this.pendingReads > 0) this.invalidatedAt.set(key, this.seq);
    }
    this.events.invalidated?.(payload.length);
  }

  /** Ends trust in every entry: nothing stored before is a hit again. */
  private lose(): void {
    const wasArmed = this.armedEpoch === this.epoch;
    this.epoch += 1;
    // A subscriber that is no longer ready will come back with a new client id.
    if (this.subscriber.status !== 'ready') this.subscriberId = undefined;
    if (wasArmed && !this.closed) {
      this.events.flushed?.('connection');
      this.logger.warn('local cache flushed: hits stop until tracking is re-armed');
    }
  }

  /** On each (re)connect of the subscriber: learn its id and server, subscribe, then arm tracking. */
  private async setUpSubscriber(): Promise<void> {
    const sub = this.subscriber;
    this.settingUp = true;
    this.lastSetUpAttemptAt = performance.now();
    try {
      // Both must be asked before SUBSCRIBE: a RESP2 subscriber accepts no other commands.
      const [id, info] = await Promise.all([sub.client('ID') as Promise<number>, sub.info('server')]);
      await sub.subscribe(INVALIDATE_CHANNEL, this.heartbeatChannel);
      this.subscriberId = Number(id);
      this.subscriberRunId = runIdOf(info);
      await this.armTracking();
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'local cache subscriber set-up failed; retrying with a new connection');
    } finally {
      this.settingUp = false;
    }
  }

  /** Points the data connection's tracking at the current subscriber, if both reach the same server. */
  private async armTracking(): Promise<void> {
    const subscriberId = this.subscriberId;
    if (this.closed || subscriberId === undefined || this.data.status !== 'ready') return;
    this.lose();
    const epoch = this.epoch;
    this.arming = true;
    this.lastArmAttemptAt = performance.now();
    try {
      // Client ids are per server: a redirect to the same id on another server would send the
      // invalidations to a stranger, or nowhere. The connection cannot change servers without a
      // reconnect, which starts a new epoch, so checking first is enough.
      const runId = runIdOf(await this.data.info('server'));
      if (epoch !== this.epoch || subscriberId !== this.subscriberId) return; // something reconnected meanwhile
      if (runId === undefined || runId !== this.subscriberRunId) {
        if (!this.mismatched) {
          this.mismatched = true;
          this.events.flushed?.('server_mismatch');
          this.logger.warn('local cache not armed: data and invalidation connections reach different servers');
        }
        return;
      }
      this.mismatched = false;
      await this.data.client('TRACKING', 'off');
      await this.data.client('TRACKING', 'on', 'REDIRECT', String(subscriberId), 'BCAST', 'PREFIX', this.prefix);
      if (epoch !== this.epoch || subscriberId !== this.subscriberId) return;
      this.armedEpoch = epoch;
      this.armedAt = performance.now();
      this.lastEchoSentAt = Number.NEGATIVE_INFINITY;
      this.unechoed = 0;
      this.silentSince = performance.now();
      this.beat();
      this.logger.info({ prefix: this.prefix }, 'local cache armed');
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'local cache could not arm tracking; reading Redis for every decision until it can');
    } finally {
      this.arming = false;
    }
  }

  /** While not armed, tries again every `ARM_RETRY_MS`: nothing else would, until a reconnect. */
  private retrySetUp(now: number): void {
    if (this.closed || this.arming || this.settingUp) return;
    if (this.subscriberId === undefined) {
      // Its set-up failed part-way (perhaps after SUBSCRIBE): start over on a new connection.
      if (this.subscriber.status === 'ready' && now - this.lastSetUpAttemptAt >= ARM_RETRY_MS) {
        this.lastSetUpAttemptAt = now;
        this.subscriber.disconnect(true);
      }
      return;
    }
    if (now - this.lastArmAttemptAt >= ARM_RETRY_MS) void this.armTracking();
  }

  /**
   * Sends a heartbeat and judges the ones that did not come back. Silence is counted in heartbeats
   * sent, not in time alone, so a pause of this process (GC, a busy host) is not taken for a dead
   * subscriber: the heartbeats it would have sent were never sent.
   */
  private beat(): void {
    const now = performance.now();
    if (this.armedEpoch !== this.epoch) {
      this.retrySetUp(now);
      return;
    }
    if (!this.silent && this.unechoed >= this.beatsPerSilence && now - this.lastEchoSentAt > this.silenceMs) {
      this.silent = true;
      this.silentSince = now;
      this.events.flushed?.('heartbeat');
      this.logger.warn({ silenceMs: this.silenceMs }, 'local cache hits suspended: heartbeats do not come back through the invalidation connection');
    }
    if (
      this.silent &&
      this.unechoed >= this.beatsPerSilence * RECONNECT_AFTER_SILENCES &&
      now - this.silentSince > this.silenceMs * RECONNECT_AFTER_SILENCES &&
      this.subscriber.status === 'ready'
    ) {
      this.silentSince = now;
      this.logger.warn('local cache subscriber still silent: reconnecting it');
      this.subscriber.disconnect(true);
    }
    if (this.beatInFlight || this.data.status !== 'ready') return;
    this.beatInFlight = true;
    this.unechoed += 1;
    this.data
      .publish(this.heartbeatChannel, String(now))
      .catch(() => undefined)
      .finally(() => {
        this.beatInFlight = false;
      });
  }
}

function runIdOf(info: string): string | undefined {
  return /run_id:([0-9a-f]+)/.exec(info)?.[1];
}
