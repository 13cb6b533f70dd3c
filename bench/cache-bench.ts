import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { RedisKeys } from '../lib/redis/keys';
import { createRedisClient, waitForReady } from '../lib/redis/client';
import { TrackingCache } from '../lib/redis/tracking-cache';
import { BudgetGate } from '../plugin/budget-gate';
import { encodeBudgetHash } from '../types/budget-hash';
import type { PermitRequest } from '../types/permit';
import { budgetFixture } from '../dev/budget-fixture';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { latencyRows, type Row } from './report';
import { elapsedUs, interleaved, nowNs } from './stats';

const SYMBOL = 'BNBUSDT';
const keys = new RedisKeys();
const asIs = (fields: Record<string, string>): Record<string, string> => fields;
const INCREASING: PermitRequest = { planId: 'bench', symbol: SYMBOL, action: 'OPEN', side: 'BUY', qty: 0.1 };

export interface CacheBenchOptions {
  hitSamples: number;
  invalidations: number;
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`cache bench: ${what} did not happen within 5 s`);
}

/**
 * The gate's local cache: a hit (the cache's lookup, and a whole gate decision answered from it)
 * against raw HGETALL of the same key in the same run, and invalidation latency: from sending a
 * write on another connection to the cache having dropped its copy.
 */
export async function runCacheBench(server: LocalRedisServer, o: CacheBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const key = keys.budget(SYMBOL);
  const writer = createRedisClient({ url: server.url, profile: 'worker' });
  const raw = createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 1000 });
  const data = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, protocol: 2 });
  const subscriber = new Redis(server.url, { autoResubscribe: false, protocol: 2 });
  for (const c of [writer, raw, data, subscriber]) c.on('error', () => undefined);
  await Promise.all([writer, raw, data].map((c) => waitForReady(c, 5000)));
  const nowSec = Math.floor(Date.now() / 1000);
  await writer.hset(key, encodeBudgetHash(budgetFixture({ symbol: SYMBOL, mode: 'enforce', timestamp: nowSec, last_violation_ts: nowSec })));

  let onInvalidated: (() => void) | undefined;
  const cache = new TrackingCache({
    data,
    subscriber,
    prefix: keys.budgetPrefix,
    heartbeatChannel: TrackingCache.heartbeatChannelUnder(keys.budgetCacheHeartbeatChannelBase),
    events: { invalidated: () => onInvalidated?.() },
  });
  const fill = async () => {
    await until(async () => {
      if (cache.lookup(key) !== undefined) return true;
      await cache.read(key, () => data.hgetall(key), asIs);
      return false;
    }, 'cache fill');
  };
  await fill();

  log('cache: hit vs raw HGETALL');
  const lookup = async () => cache.lookup(key);
  await interleaved(() => raw.hgetall(key), lookup, { samples: 500, block: 100 });
  const hit = await interleaved(() => raw.hgetall(key), lookup, { samples: o.hitSamples, block: 250 });
  if (cache.lookup(key) === undefined) throw new Error('cache bench: the entry was lost during the hit run');
  rows.push(...latencyRows('local cache hit (lookup) vs raw HGETALL', 'µs', hit, { p50: { maxRatio: 0.05 } }));

  log('cache: gate decision from a hit vs raw HGETALL');
  const gate = new BudgetGate({ redisUrl: server.url, localCache: true, registry: new Registry() });
  await until(async () => (await gate.evaluate(INCREASING)).source === 'cache', 'gate cache fill');
  const decide = () => gate.evaluate(INCREASING);
  await interleaved(() => raw.hgetall(key), decide, { samples: 500, block: 100 });
  const gateHit = await interleaved(() => raw.hgetall(key), decide, { samples: o.hitSamples, block: 250 });
  const decision = await gate.evaluate(INCREASING);
  if (decision.source !== 'cache' || decision.allow) throw new Error(`cache bench: expected a cached block, got ${JSON.stringify(decision)}`);
  rows.push(...latencyRows('gate evaluate() from a cache hit vs raw HGETALL', 'µs', gateHit));
  await gate.close();

  // Baseline: a plain PUBLISH from the same writer to a subscriber of its own, alternating with
  // the writes, so both see the same machine load.
  log('cache: invalidation latency');
  const listener = new Redis(server.url, { protocol: 2 });
  listener.on('error', () => undefined);
  let onPublished: (() => void) | undefined;
  listener.on('message', () => onPublished?.());
  const channel = TrackingCache.heartbeatChannelUnder('bench:pubsub');
  await listener.subscribe(channel);
  const latencies: number[] = [];
  const pubsub: number[] = [];
  for (let i = 0; i < o.invalidations; i++) {
    await fill();
    const invalidated = new Promise<void>((resolve) => (onInvalidated = resolve));
    let start = nowNs();
    void writer.hset(key, 'stress_factor', String(i));
    await withinMs(invalidated, 5000, 'invalidation');
    latencies.push(elapsedUs(start) / 1000);
    if (cache.lookup(key) !== undefined) throw new Error('cache bench: an invalidated entry was still a hit');
    const published = new Promise<void>((resolve) => (onPublished = resolve));
    start = nowNs();
    void writer.publish(channel, String(i));
    await withinMs(published, 5000, 'pub/sub message');
    pubsub.push(elapsedUs(start) / 1000);
  }
  onInvalidated = undefined;
  listener.disconnect();
  rows.push(
    ...latencyRows('local cache invalidation (write sent -> copy dropped) vs plain PUBLISH -> message', 'ms', { a: pubsub, b: latencies }, { p99: { max: 5 } }),
  );

  cache.close();
  for (const c of [writer, raw, data]) c.disconnect();
  return rows;
}

/** `promise`, or a rejection after `ms`: a lost message fails the run instead of hanging it. */
function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`cache bench: no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
