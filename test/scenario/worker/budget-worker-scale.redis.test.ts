import { expect } from 'chai';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, useRedisServer } from '../../support/redis';
import { workerConfig } from '../../support/seed';
import { metricValue } from '../../support/metric-values';

const SYMBOLS = 50000;
const keys = new RedisKeys();
const fixedHeat: HeatReader = { read: async () => ({ value: 0.3, source: 'live', ageSec: 0 }) };

/** 50,000 symbols with positions and market state, in pipelines of 10,000 commands. */
async function seedLargeBook(client: RedisClient, nowSec: number): Promise<void> {
  await client.hset(keys.portfolioState, { equity_usd: '100000', timestamp: String(nowSec) });
  for (let from = 0; from < SYMBOLS; from += 5000) {
    const pipeline = client.pipeline();
    for (let i = from; i < from + 5000; i++) {
      const symbol = `S${i}USDT`;
      pipeline.hset(keys.positions.key(symbol), { position_amt: `${(i % 7) - 3}.0`, entry_price: '10.0', mark_price: `${10 + (i % 100)}.0`, ts_epoch: String(nowSec) });
      pipeline.hset(keys.marketState(symbol), { vol_regime: ['LOW', 'NORMAL', 'HIGH', 'EXTREME'][i % 4]!, cluster_id: `c${i % 5}` });
    }
    await pipeline.exec();
  }
}

describe('BudgetWorker with a large book', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  let workerClient: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server, 'worker', 30000);
    // The worker's client as the service creates it: the default 1 s command timeout.
    workerClient = await connectedClient(redis.server);
  });
  after(() => {
    client.disconnect();
    workerClient.disconnect();
  });

  it('writes all 50,000 budget hashes with their TTL, cycle after cycle, within the default command timeout', async function () {
    this.timeout(90000);
    const nowSec = Math.floor(Date.now() / 1000);
    await seedLargeBook(client, nowSec);
    const config = workerConfig(redis.server, { P28_MAX_SYMBOLS: String(SYMBOLS) });
    const worker = new BudgetWorker({ config, redis: workerClient, heatSource: fixedHeat });
    try {
      for (const cycle of ['first (no hash yet)', 'second (every hash known)']) {
        const report = await worker.runOnce();
        expect(report.error, cycle).to.equal(undefined);
        expect(report.result, cycle).to.equal('ok');
        expect(report.writeFailures, cycle).to.deep.equal([]);
        expect(report.written, cycle).to.have.length(SYMBOLS);
      }
      expect(await metricValue(worker.metrics.registry, 'p28_redis_write_fail_total')).to.equal(0);
      let budgets = 0;
      let cursor = '0';
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', 'quantum:portfolio:budget:*', 'COUNT', 10000);
        budgets += found.length;
        cursor = next;
      } while (cursor !== '0');
      expect(budgets).to.equal(SYMBOLS);
      for (const i of [0, 24999, 49999]) {
        const key = keys.budget(`S${i}USDT`);
        expect(await client.ttl(key), key).to.be.within(1, config.budgetHashTtlSec);
        expect((await client.hgetall(key)).position_price, key).to.equal(String(10 + (i % 100)));
      }
    } finally {
      await worker.stop();
    }
  });
});
