import { expect } from 'chai';
import Redis from 'ioredis';
import { waitForReady } from '../../../lib/redis/client';
import { TrackingCache, type CacheFlushCause } from '../../../lib/redis/tracking-cache';
import { LocalRedisServer } from '../../support/local-redis-server';
import { eventually } from '../../support/redis';
import { TcpProxy } from '../../support/tcp-proxy';

const PREFIX = 'quantum:portfolio:budget:';
const SUBSCRIBER_NAME = 'tracking-cache-test-sub';
/** The reads here are HGETALLs: their answer is the fields. */
const asIs = (fields: Record<string, string>): Record<string, string> => fields;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function client(url: string, name?: string): Redis {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectionName: name, retryStrategy: () => 50, protocol: 2 });
  redis.on('error', () => undefined);
  return redis;
}

interface Harness {
  cache: TrackingCache;
  data: Redis;
  subscriber: Redis;
  flushes: CacheFlushCause[];
  invalidations: { count: number };
  readThrough(key: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

async function harness(dataUrl: string, subscriberUrl: string): Promise<Harness> {
  const data = client(dataUrl);
  const subscriber = new Redis(subscriberUrl, { autoResubscribe: false, connectionName: SUBSCRIBER_NAME, retryStrategy: () => 50, protocol: 2 });
  subscriber.on('error', () => undefined);
  const flushes: CacheFlushCause[] = [];
  const invalidations = { count: 0 };
  const cache = new TrackingCache({
    data,
    subscriber,
    prefix: PREFIX,
    heartbeatChannel: TrackingCache.heartbeatChannelUnder('test:heartbeat'),
    events: { flushed: (cause) => flushes.push(cause), invalidated: (n) => (invalidations.count += n) },
  });
  await waitForReady(data, 5000);
  return {
    cache,
    data,
    subscriber,
    flushes,
    invalidations,
    readThrough: async (key) => cache.lookup(key) ?? cache.read(key, () => data.hgetall(key), asIs),
    close: async () => {
      cache.close();
      data.disconnect();
    },
  };
}

/** Reads `key` through the cache until it is a hit (the first read fills it once tracking is armed). */
async function cached(h: Harness, key: string): Promise<Record<string, string>> {
  await eventually(async () => {
    if (h.cache.lookup(key) !== undefined) return true;
    await h.cache.read(key, () => h.data.hgetall(key), asIs);
    return false;
  }, 5000, 10);
  return h.cache.lookup(key)!;
}

describe('TrackingCache (redis)', function () {
  this.timeout(30000);
  let server: LocalRedisServer;
  let writer: Redis;
  let h: Harness | undefined;

  before(async () => {
    server = await LocalRedisServer.start({ args: ['--enable-debug-command', 'local'] });
    writer = client(server.url);
    await waitForReady(writer, 5000);
  });
  after(async () => {
    writer.disconnect();
    await server.stop();
  });
  /** The id of the test's subscriber connection on the server, if it has one. */
  const subscriberId = async (): Promise<string | undefined> => {
    const list = (await writer.client('LIST')) as string;
    return new RegExp(`id=(\\d+) [^\\n]*name=${SUBSCRIBER_NAME} `).exec(list)?.[1];
  };

  afterEach(async () => {
    await h?.close();
    h = undefined;
    await writer.debug('SET-ACTIVE-EXPIRE', '1');
  });

  it('refuses connections that speak RESP3, where invalidations would never reach it', () => {
    const resp3 = new Redis({ lazyConnect: true, protocol: 3 });
    const resp2 = new Redis({ lazyConnect: true, protocol: 2 });
    try {
      expect(() => new TrackingCache({ data: resp3, subscriber: resp2, prefix: PREFIX, heartbeatChannel: 'hb' })).to.throw(TypeError, /data connection/);
      expect(() => new TrackingCache({ data: resp2, subscriber: resp3, prefix: PREFIX, heartbeatChannel: 'hb' })).to.throw(TypeError, /subscriber connection/);
    } finally {
      resp3.disconnect();
      resp2.disconnect();
    }
  });

  it('serves a hit once armed and drops the entry when another client writes the key', async () => {
    h = await harness(server.url, server.url);
    const key = `${PREFIX}BTCUSDT`;
    await writer.hset(key, { budget_usd: '100' });
    expect(await cached(h, key)).to.deep.equal({ budget_usd: '100' });
    await writer.hset(key, { budget_usd: '200' });
    await eventually(() => h!.cache.lookup(key) === undefined, 2000, 5);
    expect(h.invalidations.count).to.be.greaterThan(0);
    expect(await cached(h, key)).to.deep.equal({ budget_usd: '200' });
  });

  it('does not store a read whose answer is handled after its key was invalidated', async () => {
    h = await harness(server.url, server.url);
    const key = `${PREFIX}AVAXUSDT`;
    await writer.hset(key, 'v', 'old');
    await cached(h, key);
    const before = h.invalidations.count;
    // The read is answered by Redis, then the key changes and its invalidation is handled, and only
    // then does the answer reach the cache: the order two sockets can deliver in.
    const fields = await h.cache.read(key, async () => {
      const answer = await h!.data.hgetall(key);
      await writer.hset(key, 'v', 'new');
      await eventually(() => h!.invalidations.count > before, 2000, 1);
      return answer;
    }, asIs);
    expect(fields).to.deep.equal({ v: 'old' });
    await h.data.ping();
    expect(h.cache.lookup(key)).to.equal(undefined);
    expect(await cached(h, key)).to.deep.equal({ v: 'new' });
  });

  it('never keeps a value read while its key was being rewritten (in-flight invalidation)', async () => {
    h = await harness(server.url, server.url);
    const keys = Array.from({ length: 20 }, (_, i) => `${PREFIX}RACE${i}USDT`);
    await Promise.all(keys.map((key) => writer.hset(key, 'v', 'start')));
    await cached(h, keys[0]!);
    let stale = 0;
    for (let round = 0; round < 15; round++) {
      let writing = true;
      // Two readers per key, so that a read is nearly always in flight when a write lands.
      const readers = [...keys, ...keys].map(async (key) => {
        while (writing) {
          await h!.readThrough(key);
          // A hit resolves without I/O; yield so that the writes and invalidations get their turn.
          await new Promise((r) => setImmediate(r));
        }
      });
      const last = new Map<string, string>();
      for (let i = 0; i < 60; i++) {
        await Promise.all(keys.map((key) => writer.hset(key, 'v', `${round}-${i}`)));
        for (const key of keys) last.set(key, `${round}-${i}`);
      }
      writing = false;
      await Promise.all(readers);
      // Every invalidation for the last writes has been sent before this PING returns.
      await writer.ping();
      await sleep(50);
      for (const key of keys) {
        const hit = h.cache.lookup(key);
        if (hit !== undefined && hit.v !== last.get(key)) stale += 1;
      }
    }
    expect(stale, 'cache hits that differ from what Redis holds').to.equal(0);
  });

  it('flushes when the subscriber is killed and re-arms with its new id', async () => {
    h = await harness(server.url, server.url);
    const key = `${PREFIX}ETHUSDT`;
    await writer.hset(key, { budget_usd: '1' });
    await cached(h, key);
    const id = await subscriberId();
    expect(id, 'subscriber in CLIENT LIST').to.be.a('string');
    await writer.client('KILL', 'ID', id!);
    await eventually(() => h!.flushes.includes('connection'), 2000, 5);
    expect(h.cache.lookup(key)).to.equal(undefined);
    // Re-armed for the new subscriber: hits again, and a write reaches it.
    expect(await cached(h, key)).to.deep.equal({ budget_usd: '1' });
    await writer.hset(key, { budget_usd: '2' });
    await eventually(() => h!.cache.lookup(key) === undefined, 2000, 5);
  });

  it('stops hits within about 100 ms when the subscriber goes silent without closing, then replaces its connection', async () => {
    const proxy = await TcpProxy.start(server.port);
    try {
      h = await harness(server.url, proxy.url);
      const key = `${PREFIX}SOLUSDT`;
      await writer.hset(key, { budget_usd: '1' });
      await cached(h, key);
      proxy.freeze();
      const frozenAt = Date.now();
      await writer.hset(key, { budget_usd: '2' });
      await eventually(() => h!.cache.lookup(key) === undefined, 2000, 2);
      expect(Date.now() - frozenAt).to.be.below(1000);
      await eventually(() => h!.flushes.includes('heartbeat'), 1000, 5);
      // While silent, a fresh read is never trusted as a hit.
      await h.cache.read(key, () => h!.data.hgetall(key), asIs);
      expect(h.cache.lookup(key)).to.equal(undefined);
      // Still silent after about a second: the cache drops the subscriber's connection for a new one.
      const idBefore = await subscriberId();
      await eventually(async () => (await subscriberId()) !== idBefore, 5000, 50);
      proxy.thaw();
      expect(await cached(h, key)).to.deep.equal({ budget_usd: '2' });
    } finally {
      await h?.close();
      h = undefined;
      await proxy.stop();
    }
  });

  it('keeps trying to arm when tracking is refused, and arms once it is allowed', async () => {
    await writer.acl('SETUSER', 'default', '-client|tracking');
    try {
      h = await harness(server.url, server.url);
      const key = `${PREFIX}TRXUSDT`;
      await writer.hset(key, { budget_usd: '1' });
      for (let i = 0; i < 10; i++) {
        await h.cache.read(key, () => h!.data.hgetall(key), asIs);
        expect(h.cache.lookup(key)).to.equal(undefined);
        await sleep(20);
      }
    } finally {
      await writer.acl('SETUSER', 'default', '+client|tracking');
    }
    expect(await cached(h!, `${PREFIX}TRXUSDT`)).to.deep.equal({ budget_usd: '1' });
  });

  it('does not take a stall of its own process for a silent subscriber', async () => {
    h = await harness(server.url, server.url);
    const key = `${PREFIX}LTCUSDT`;
    await writer.hset(key, { budget_usd: '1' });
    await cached(h, key);
    const busyUntil = Date.now() + 400;
    while (Date.now() < busyUntil) {
      // A synchronous stall, as a long GC pause or a starved host would make.
    }
    await sleep(100);
    expect(h.flushes).to.not.include('heartbeat');
    expect(h.cache.lookup(key), 'the copy is a hit again without a read').to.deep.equal({ budget_usd: '1' });
  });

  it('never arms while the data and invalidation connections reach different servers (failover)', async () => {
    const other = await LocalRedisServer.start();
    const proxy = await TcpProxy.start(server.port);
    const otherWriter = client(other.url);
    await waitForReady(otherWriter, 5000);
    try {
      h = await harness(proxy.url, server.url);
      const key = `${PREFIX}XRPUSDT`;
      await writer.hset(key, { budget_usd: '1' });
      await otherWriter.hset(key, { budget_usd: '9' });
      await cached(h, key);
      // The data connection fails over to another server; the subscriber stays on the first.
      proxy.retarget(other.port);
      await eventually(() => h!.flushes.includes('server_mismatch'), 5000, 10);
      for (let i = 0; i < 20; i++) {
        await h.cache.read(key, () => h!.data.hgetall(key), asIs).catch(() => undefined);
        expect(h.cache.lookup(key)).to.equal(undefined);
        await sleep(10);
      }
      // Writes on the new server are not tracked by the old subscriber: a hit now could be stale.
      await otherWriter.hset(key, { budget_usd: '10' });
      expect(h.cache.lookup(key)).to.equal(undefined);
    } finally {
      otherWriter.disconnect();
      await h?.close();
      h = undefined;
      await proxy.stop();
      await other.stop();
    }
  });

  it("stops serving an entry at its key's TTL deadline even before the server expires it", async () => {
    h = await harness(server.url, server.url);
    const key = `${PREFIX}ADAUSDT`;
    // With active expiry off, only the entry's own deadline can end it (the server would send
    // an invalidation only when something touches the expired key).
    await writer.debug('SET-ACTIVE-EXPIRE', '0');
    await writer.multi().hset(key, { budget_usd: '1' }).pexpire(key, 600).exec();
    const setAt = Date.now();
    await cached(h, key);
    await sleep(Math.max(0, 600 - (Date.now() - setAt)) + 20);
    expect(h.cache.lookup(key)).to.equal(undefined);
    expect(h.cache.lastKnown(key)).to.equal(undefined);
  });

  it('drops every entry on a server flush', async () => {
    h = await harness(server.url, server.url);
    const key = `${PREFIX}DOGEUSDT`;
    await writer.hset(key, { budget_usd: '1' });
    await cached(h, key);
    await writer.flushall();
    await eventually(() => h!.flushes.includes('server_flush'), 2000, 5);
    expect(h.cache.lookup(key)).to.equal(undefined);
    expect(h.cache.lastKnown(key)).to.equal(undefined);
  });
});
