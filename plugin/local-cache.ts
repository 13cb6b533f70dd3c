import type { Registry } from 'prom-client';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';
import type { RedisKeys } from '../lib/redis/keys';
import { counter, metricsOn } from '../lib/registry-metrics';
import { redisModeOf } from '../lib/redis/redis-modes';
import { TrackingCache, type CacheFlushCause } from '../lib/redis/tracking-cache';
import { budgetFieldsFromValues } from '../types/budget-hash';
import { PLAN_REPLY_LENGTH } from './plan-script';

const FLUSH_CAUSES: readonly CacheFlushCause[] = ['connection', 'heartbeat', 'server_mismatch', 'server_flush'];

interface Increment {
  inc(value?: number): void;
}

/**
 * The local cache's metrics, declared once: `LocalCacheMetrics` creates them, and docs/metrics.md's
 * local cache table is generated from this table (`npm run docs:gen`).
 */
export const LOCAL_CACHE_METRICS = {
  hits: counter({ name: 'p28_gate_cache_hits_total', help: 'Budget gate decisions answered from the local cache, without a round trip.' }),
  misses: counter({ name: 'p28_gate_cache_misses_total', help: 'Budget gate local cache lookups that went on to read Redis.' }),
  invalidations: counter({
    name: 'p28_gate_cache_invalidations_total',
    help: 'Budget keys the local cache was told had changed (server-assisted invalidation); each drops its copy.',
  }),
  flushes: counter({
    name: 'p28_gate_cache_flushes_total',
    help: 'Times the local cache stopped trusting its entries, by cause: a connection closed or reconnected, heartbeats stopped coming back, the two connections were found on different servers (once per episode), or the server flushed. A growing count means hits keep being switched off.',
    labelNames: ['cause'],
    labelValues: { cause: FLUSH_CAUSES },
  }),
};

/** The local cache's counters on the gate's registry; every series starts at 0. */
export class LocalCacheMetrics {
  readonly hits: Increment;
  readonly misses: Increment;
  readonly invalidations: Increment;
  readonly flushes: Record<CacheFlushCause, Increment>;

  constructor(registry: Registry) {
    const m = metricsOn(registry, LOCAL_CACHE_METRICS);
    this.hits = m.hits;
    this.misses = m.misses;
    this.invalidations = m.invalidations;
    const flushes = m.flushes;
    this.flushes = Object.fromEntries(FLUSH_CAUSES.map((cause) => [cause, flushes.labels(cause)])) as Record<CacheFlushCause, Increment>;
    for (const metric of [this.hits, this.misses, this.invalidations, ...Object.values(this.flushes)]) metric.inc(0);
  }
}

/**
 * The gate's side of the local cache (option `localCache`): a `TrackingCache` of budget hashes on
 * the gate's own connection plus one subscriber connection, and its counters on the gate's
 * registry. The gate asks `lookup` before reading, reads through `read`, and, only when Redis
 * cannot be read, asks `lastKnown`.
 */
export class GateLocalCache {
  private constructor(
    private readonly cache: TrackingCache,
    private readonly metrics: LocalCacheMetrics,
  ) {}

  /**
   * The cache for a gate reading through `client`, or undefined on a Redis Cluster: invalidations
   * there come from each master separately, which needs one subscriber per node, so a Cluster
   * client reads Redis for every decision (logged once at start-up).
   */
  static create(gateClient: RedisClient, options: { keys: RedisKeys; registry: Registry; logger: Logger }): GateLocalCache | undefined {
    const client = redisModeOf(gateClient).trackingConnection(gateClient);
    if (client === undefined) {
      options.logger.warn('localCache is not supported on Redis Cluster: reading Redis for every decision');
      return undefined;
    }
    if (client.options.protocol !== 2) {
      // Invalidations are read as RESP2 pub/sub messages on the subscriber; a RESP3 connection gets
      // them as push frames instead, and a cache that never hears of a change must not answer.
      options.logger.warn('localCache needs a RESP2 client (protocol: 2, as createRedisClient makes): reading Redis for every decision');
      return undefined;
    }
    const metrics = new LocalCacheMetrics(options.registry);
    const subscriber = client.duplicate({
      protocol: 2,
      autoResubscribe: false,
      enableAutoPipelining: false,
      connectionName: 'p28-budget-gate-cache',
      lazyConnect: false,
    });
    subscriber.on('error', (error: Error) => options.logger.debug({ err: error.message }, 'local cache subscriber error'));
    const cache = new TrackingCache({
      data: client,
      subscriber,
      prefix: options.keys.budgetPrefix,
      heartbeatChannel: TrackingCache.heartbeatChannelUnder(options.keys.budgetCacheHeartbeatChannelBase),
      logger: options.logger,
      events: {
        invalidated: (keys) => metrics.invalidations.inc(keys),
        flushed: (cause) => metrics.flushes[cause].inc(),
      },
    });
    return new GateLocalCache(cache, metrics);
  }

  /** The budget hash under `key` when the cache can vouch for it (counted as a hit), else undefined. */
  lookup(key: string): Record<string, string> | undefined {
    const fields = this.cache.lookup(key);
    (fields === undefined ? this.metrics.misses : this.metrics.hits).inc();
    return fields;
  }

  /**
   * Wraps the gate's one call of the decision script for `key` (asked to append the hash's known
   * fields after its decision), so that the hash is cached unless invalidated meanwhile.
   */
  read(key: string, decide: () => Promise<Array<string | null>>): Promise<Array<string | null>> {
    return this.cache.read(key, decide, (reply) => budgetFieldsFromValues(reply.slice(PLAN_REPLY_LENGTH)));
  }

  /** The last hash read for `key` and not since invalidated or expired: for when Redis is unreachable. */
  lastKnown(key: string): Record<string, string> | undefined {
    return this.cache.lastKnown(key);
  }

  /** Ends the subscriber connection and switches tracking off; waits for neither. */
  close(): void {
    this.cache.close();
  }
}
