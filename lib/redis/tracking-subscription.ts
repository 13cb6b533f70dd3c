import type Redis from 'ioredis';
import type { Logger } from '../logger';
import type { TrackedEntries } from './tracked-entries';

/** Why the cache stopped trusting what it holds. */
export type CacheFlushCause = 'connection' | 'heartbeat' | 'server_mismatch' | 'server_flush';

/** Counters the owner of a cache wires to its metrics. */
export interface TrackingCacheEvents {
  /** Keys named by invalidation messages (one call per message). */
  invalidated?(keys: number): void;
  flushed?(cause: CacheFlushCause): void;
}

/** A `TrackingCache`'s options with its defaults applied, and where the invalidations go. */
export interface TrackingSubscriptionOptions {
  data: Redis;
  subscriber: Redis;
  prefix: string;
  heartbeatChannel: string;
  heartbeatIntervalMs: number;
  silenceMs: number;
  logger: Logger;
  events: TrackingCacheEvents;
  entries: Pick<TrackedEntries, 'invalidate' | 'serverFlushed'>;
}

/**
 * Silent for this many `silenceMs`, the subscriber is reconnected: a socket that died without a
 * FIN would otherwise wait for TCP keepalive, minutes to hours, before ioredis notices.
 */
const RECONNECT_AFTER_SILENCES = 10;

/** How often a failed set-up (a timeout, an ACL refusal, servers that differ) is tried again, in ms. */
const ARM_RETRY_MS = 1000;

const INVALIDATE_CHANNEL = '__redis__:invalidate';

/**
 * The coherence half of a `TrackingCache`: switches `CLIENT TRACKING on REDIRECT <subscriber id>
 * BCAST PREFIX` on for the data connection (re-armed after each reconnect of either connection,
 * and only while both reach the same server), hands the invalidations the subscriber receives on
 * `__redis__:invalidate` to the entries, and sends the heartbeat whose return proves them current.
 * Any close or reconnect of either connection starts a new epoch.
 */
export class TrackingSubscription {
  private readonly data: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly heartbeatChannel: string;
  private readonly silenceMs: number;
  private readonly logger: Logger;
  private readonly events: TrackingCacheEvents;
  private readonly entries: TrackingSubscriptionOptions['entries'];
  /** Bumped whenever coherence may have been lost or is newly established. */
  private currentEpoch = 0;
  private armedEpoch = -1;
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
  private stopped = false;
  private readonly detach: Array<() => void> = [];

  constructor(options: TrackingSubscriptionOptions) {
    // Invalidations are read as RESP2 pub/sub messages on the subscriber. Over RESP3 they arrive as
    // push frames this cache never sees, while heartbeats still flow: it would serve stale copies.
    for (const [role, client] of [['data', options.data], ['subscriber', options.subscriber]] as const) {
      if (client.options.protocol !== 2) throw new TypeError(`TrackingCache needs RESP2 connections (protocol: 2); the ${role} connection is not`);
    }
    this.data = options.data;
    this.subscriber = options.subscriber;
    this.prefix = options.prefix;
    this.heartbeatChannel = options.heartbeatChannel;
    this.silenceMs = options.silenceMs;
    this.logger = options.logger;
    this.events = options.events;
    this.entries = options.entries;

    this.listen(this.subscriber, 'messageBuffer', (channel: Buffer, payload: unknown) => this.onMessage(channel, payload));
    this.listen(this.subscriber, 'ready', () => void this.setUpSubscriber());
    this.listen(this.data, 'ready', () => void this.armTracking());
    for (const client of [this.data, this.subscriber]) {
      this.listen(client, 'close', () => this.lose());
      this.listen(client, 'reconnecting', () => this.lose());
    }
    this.beatsPerSilence = Math.max(1, Math.ceil(this.silenceMs / options.heartbeatIntervalMs));
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatIntervalMs);
    this.heartbeat.unref();
    if (this.subscriber.status === 'ready') void this.setUpSubscriber();
  }

  /** The current coherence epoch: copies stored in an earlier one are no longer hits. */
  get epoch(): number {
    return this.currentEpoch;
  }

  get closed(): boolean {
    return this.stopped;
  }

  /** True while a hit can be trusted to be what Redis holds now (within invalidation latency). */
  get coherent(): boolean {
    return this.armedEpoch === this.currentEpoch && !this.stopped && performance.now() - this.lastEchoSentAt <= this.silenceMs;
  }

  /** Stops the heartbeat and the listeners, switches tracking off (best effort) and ends the subscriber. */
  close(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    for (const off of this.detach.splice(0)) off();
    // Neither is waited for: on a stopped Redis the subscriber's FIN is never answered and a
    // command waits for its timeout. Tracking ends with the data connection when that is closed.
    this.subscriber.disconnect();
    if (this.data.status === 'ready') this.data.client('TRACKING', 'off').catch(() => undefined);
  }

  private listen(client: Redis, event: string, handler: Parameters<Redis['on']>[1]): void {
    client.on(event, handler);
    this.detach.push(() => client.off(event, handler));
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
    if (payload === null || !Array.isArray(payload)) {
      // A null invalidation is FLUSHALL/FLUSHDB (or the server dropping its tracking table).
      this.entries.serverFlushed();
      this.events.flushed?.('server_flush');
      return;
    }
    this.entries.invalidate((payload as Buffer[]).map((raw) => raw.toString()));
    this.events.invalidated?.(payload.length);
  }

  /** Ends trust in every entry: nothing stored before is a hit again. */
  private lose(): void {
    const wasArmed = this.armedEpoch === this.currentEpoch;
    this.currentEpoch += 1;
    // A subscriber that is no longer ready will come back with a new client id.
    if (this.subscriber.status !== 'ready') this.subscriberId = undefined;
    if (wasArmed && !this.stopped) {
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
    if (this.stopped || subscriberId === undefined || this.data.status !== 'ready') return;
    this.lose();
    const epoch = this.currentEpoch;
    this.arming = true;
    this.lastArmAttemptAt = performance.now();
    try {
      // Client ids are per server: a redirect to the same id on another server would send the
      // invalidations to a stranger, or nowhere. The connection cannot change servers without a
      // reconnect, which starts a new epoch, so checking first is enough.
      const runId = runIdOf(await this.data.info('server'));
      if (epoch !== this.currentEpoch || subscriberId !== this.subscriberId) return; // something reconnected meanwhile
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
      if (epoch !== this.currentEpoch || subscriberId !== this.subscriberId) return;
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
    if (this.stopped || this.arming || this.settingUp) return;
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
    if (this.armedEpoch !== this.currentEpoch) {
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
