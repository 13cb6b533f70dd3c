import { expect } from 'chai';
import Redis, { Cluster } from 'ioredis';
import { Registry } from 'prom-client';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { BudgetGate } from '../../../plugin/budget-gate';
import { GateOptionsError, type BudgetGateOptions } from '../../../plugin/gate-options';
import { GateLocalCache } from '../../../plugin/local-cache';
import { budgetFields, plan } from '../../support/gate-fixtures';
import { captureLogs } from '../../support/log-capture';
import { LocalRedisServer } from '../../support/local-redis-server';
import { metricValue } from '../../support/metric-values';
import { connectedClient, eventually } from '../../support/redis';

const keys = new RedisKeys();
const KEY = keys.budget('ETHUSDT');
const OVER_BUDGET = { qty: 0.4 };

async function scriptCalls(admin: RedisClient): Promise<number> {
  const stats = String(await admin.info('commandstats'));
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/**
 * Evaluates until a decision comes from the cache (the first ones fill it once tracking is armed).
 * A block: a cached allow is never final, it still calls Redis to reserve the plan's increase.
 */
async function untilCached(gate: BudgetGate): Promise<void> {
  await eventually(async () => (await gate.evaluate(plan(OVER_BUDGET))).source === 'cache', 10000, 10);
}

describe('BudgetGate localCache (redis)', function () {
  this.timeout(30000);
  let server: LocalRedisServer;
  let admin: RedisClient;
  const made: BudgetGate[] = [];
  const newGate = (options: Partial<BudgetGateOptions> = {}): BudgetGate => {
    const gate = new BudgetGate({ redisUrl: server.url, registry: new Registry(), localCache: true, ...options });
    made.push(gate);
    return gate;
  };

  beforeEach(async () => {
    server = await LocalRedisServer.start();
    admin = await connectedClient(server);
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((gate) => gate.close()));
    admin.disconnect();
    await server.stop();
  });

  it('is off by default: every decision reads Redis (source redis) and no cache metric exists', async () => {
    await admin.hset(KEY, budgetFields());
    const gate = newGate({ localCache: undefined });
    await eventually(async () => (await gate.evaluate(plan())).reason === 'within_budget');
    for (let i = 0; i < 5; i++) expect((await gate.evaluate(plan())).source).to.equal('redis');
    expect(gate.registry.getSingleMetric('p28_gate_cache_hits_total')).to.equal(undefined);
  });

  it('answers a block from a hit without calling Redis (source cache), an allow from Redis (it reserves), and reads again after the worker rewrites the hash', async () => {
    await admin.hset(KEY, budgetFields());
    const gate = newGate();
    await untilCached(gate);
    const before = await scriptCalls(admin);
    for (let i = 0; i < 20; i++) {
      const decision = await gate.evaluate(plan(OVER_BUDGET));
      expect(decision).to.include({ reason: 'p28_budget_violation', source: 'cache' });
    }
    expect(await scriptCalls(admin)).to.equal(before);
    expect(await gate.evaluate(plan())).to.include({ reason: 'within_budget', source: 'redis' });
    expect(await metricValue(gate.registry, 'p28_gate_cache_hits_total')).to.be.at.least(20);

    await admin.hset(KEY, budgetFields({ mode: 'shadow' }));
    await eventually(async () => (await gate.evaluate(plan())).mode === 'shadow', 2000, 5);
    expect(await metricValue(gate.registry, 'p28_gate_cache_invalidations_total')).to.be.at.least(1);
    expect(await metricValue(gate.registry, 'p28_gate_cache_misses_total')).to.be.at.least(1);
    expect((await gate.evaluate(plan())).source).to.be.oneOf(['redis', 'cache']);
  });

  it('keeps blocking under enforce from the cache while Redis is stopped, and fails open once the hash is past staleAfterMs', async function () {
    let offsetMs = 0;
    await admin.hset(KEY, budgetFields());
    const gate = newGate({ staleAfterMs: 10000, now: () => Date.now() + offsetMs, resetTimeoutMs: 200 });
    await untilCached(gate);
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: false, source: 'cache' });

    server.pause();
    try {
      // Once the heartbeat is missed there are no hits: what follows comes from the outage path.
      await eventually(async () => (await metricValue(gate.registry, 'p28_gate_cache_flushes_total', { cause: 'heartbeat' })) >= 1);
      const hits = await metricValue(gate.registry, 'p28_gate_cache_hits_total');
      for (let i = 0; i < 10; i++) {
        const decision = await gate.evaluate(plan(OVER_BUDGET));
        expect(decision).to.include({ allow: false, reason: 'p28_budget_violation', failOpen: false, source: 'cache' });
      }
      expect(await metricValue(gate.registry, 'p28_gate_cache_hits_total')).to.equal(hits);
      offsetMs = 11000;
      const decision = await gate.evaluate(plan(OVER_BUDGET));
      expect(decision).to.include({ allow: true, failOpen: true, source: 'none' });
      expect(decision.reason).to.be.oneOf(['timeout', 'redis_unavailable', 'breaker_open']);
    } finally {
      server.resume();
    }
  });

  it('keeps blocking from the cache after Redis is killed, and never blocks on a hash it never read', async () => {
    await admin.hset(KEY, budgetFields());
    // A short breaker reset, so that reading resumes soon after the restart.
    const gate = newGate({ resetTimeoutMs: 200 });
    await untilCached(gate);
    await server.kill();
    await eventually(async () => (await metricValue(gate.registry, 'p28_gate_cache_flushes_total', { cause: 'connection' })) >= 1);
    const hits = await metricValue(gate.registry, 'p28_gate_cache_hits_total');
    for (let i = 0; i < 5; i++) {
      expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: false, reason: 'p28_budget_violation', source: 'cache' });
    }
    expect(await metricValue(gate.registry, 'p28_gate_cache_hits_total')).to.equal(hits);
    const other = await gate.evaluate(plan({ ...OVER_BUDGET, symbol: 'SOLUSDT' }));
    expect(other).to.include({ allow: true, failOpen: true, source: 'none' });

    // The server comes back empty (no persistence): the old hash must not outlive it.
    await server.restart();
    await eventually(async () => (await gate.evaluate(plan(OVER_BUDGET))).reason === 'no_budget_data', 10000);
    server.pause();
    try {
      const paused = await gate.evaluate(plan(OVER_BUDGET));
      expect(paused, JSON.stringify(paused)).to.include({ allow: true, failOpen: true, source: 'none' });
    } finally {
      server.resume();
    }
    admin.disconnect();
    admin = await connectedClient(server);
    await admin.hset(KEY, budgetFields());
    await untilCached(gate);
  });

  it('close() ends the cache connection, and does not wait on a stopped Redis for it', async () => {
    const cacheConnections = async () =>
      String(await admin.client('LIST')).split('\n').filter((line) => line.includes('name=p28-budget-gate-cache')).length;
    await admin.hset(KEY, budgetFields());
    const first = newGate();
    await untilCached(first);
    expect(await cacheConnections()).to.equal(1);
    await first.close();
    await eventually(async () => (await cacheConnections()) === 0, 2000);

    // Through a client passed in (which close() leaves open), nothing else is waited for.
    const host = await connectedClient(server, 'gate', 50);
    const second = newGate({ redis: host, redisUrl: undefined });
    await untilCached(second);
    server.pause();
    try {
      const started = Date.now();
      await second.close();
      expect(Date.now() - started).to.be.below(1000);
    } finally {
      server.resume();
      host.disconnect();
    }
  });

  it('falls back to no cache on a Redis Cluster client, and says so in the log', () => {
    const { logger, lines } = captureLogs();
    const cluster = new Cluster([{ host: '127.0.0.1', port: server.port }], { lazyConnect: true });
    try {
      expect(GateLocalCache.create(cluster, { keys, registry: new Registry(), logger })).to.equal(undefined);
      expect(lines.map((line) => line.msg)).to.include('localCache is not supported on Redis Cluster: reading Redis for every decision');
    } finally {
      cluster.disconnect();
    }
  });

  it('falls back to reading Redis, logged, for a client that speaks RESP3', async () => {
    const { logger, lines } = captureLogs();
    const resp3 = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true, protocol: 3 });
    try {
      expect(GateLocalCache.create(resp3, { keys, registry: new Registry(), logger })).to.equal(undefined);
      expect(lines.map((line) => line.msg).join('\n')).to.contain('localCache needs a RESP2 client');
    } finally {
      resp3.disconnect();
    }
  });

  it('rejects a localCache that is not a boolean', () => {
    expect(() => new BudgetGate({ redisUrl: server.url, localCache: 'yes' as unknown as boolean })).to.throw(GateOptionsError, /localCache/);
  });
});
