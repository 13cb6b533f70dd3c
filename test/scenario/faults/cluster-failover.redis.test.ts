import { expect } from 'chai';
import { loadConfig } from '../../../lib/config';
import { createRedisClient, waitForReady, type RedisClient } from '../../../lib/redis/client';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { freePort } from '../../support/local-redis-server';
import { LocalRedisCluster } from '../../support/redis-cluster';
import { seedGuideScenario } from '../../support/seed';

describe('Redis Cluster: a worker started after a failover', function () {
  this.timeout(60000);
  let cluster: LocalRedisCluster;
  let client: RedisClient | undefined;

  before(async () => {
    cluster = await LocalRedisCluster.start(3);
  });
  after(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('connects within 10 s from a seed list of the original masters, two of them gone and one now a replica', async () => {
    const [first] = cluster.ports;
    const promoted = await cluster.addReplica(first!);
    await cluster.failover(promoted, first!);
    const gone = [await freePort(), await freePort()];
    const seeds = [first!, ...gone].map((port) => ({ host: '127.0.0.1', port }));
    const config = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_CLUSTER_NODES: seeds.map((s) => `${s.host}:${s.port}`).join(','),
      LOG_LEVEL: 'silent',
      P28_INSTANCE_ID: 'after-failover',
    });
    const started = Date.now();
    client = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes, profile: 'worker' });
    client.on('error', () => undefined);
    await waitForReady(client, 10000);
    expect(Date.now() - started).to.be.below(10000);

    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const heat: HeatReader = { read: async () => ({ value: 0.65, source: 'live' }) };
    const worker = new BudgetWorker({ config, redis: client, heatSource: heat });
    const report = await worker.runOnce();
    expect([report.result, report.written]).to.deep.equal(['ok', ['BTCUSDT']]);
    expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');
  });
});
