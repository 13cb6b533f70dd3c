import { expect } from 'chai';
import { isOverBudget, listBudgets } from '../../../lib/redis/budget-listing';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { encodeBudgetHash } from '../../../types/budget-hash';
import { budgetFixture } from '../../support/budget-fixture';
import { LocalRedisServer } from '../../support/local-redis-server';
import { connectedClient, useRedisServer } from '../../support/redis';
import { useRedisCluster } from '../../support/redis-cluster';

const keys = new RedisKeys();

async function seed(client: RedisClient, symbols: string[]): Promise<void> {
  // One command per key, so that it works on a Redis Cluster as well.
  await Promise.all(
    symbols.map((symbol, i) =>
      client.hset(keys.budget(symbol), encodeBudgetHash(budgetFixture({ symbol, over_budget_usd: i % 2 === 0 ? 100 : 0 }))),
    ),
  );
}

describe('listBudgets', () => {
  describe('on a standalone server', () => {
    const redis = useRedisServer();
    let client: RedisClient;
    beforeEach(async () => {
      client = await connectedClient(redis.server);
      await client.flushall();
    });
    afterEach(() => client.disconnect());

    it('lists every budget hash once, sorted by symbol, as stored', async () => {
      await seed(client, ['SOLUSDT', 'BTCUSDT', 'ETHUSDT']);
      const listed = await listBudgets(client, keys);
      expect(listed.map((b) => b.symbol)).to.deep.equal(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
      expect(listed[0]!.fields).to.deep.equal(await client.hgetall(keys.budget('BTCUSDT')));
    });

    it('leaves out keys that are not hashes and keys whose name is not a valid symbol', async () => {
      await seed(client, ['BTCUSDT']);
      await client.set(keys.budget('ETHUSDT'), 'not a hash');
      await client.hset('quantum:portfolio:budget:eth*', { symbol: 'x' });
      expect((await listBudgets(client, keys)).map((b) => b.symbol)).to.deep.equal(['BTCUSDT']);
    });

    it('tells over-budget hashes by over_budget_usd > 0', async () => {
      await seed(client, ['AUSDT', 'BUSDT', 'CUSDT']);
      const over = (await listBudgets(client, keys)).filter((b) => isOverBudget(b.fields)).map((b) => b.symbol);
      expect(over).to.deep.equal(['AUSDT', 'CUSDT']);
    });

    it('rejects when Redis cannot be asked, rather than answering an empty list', async () => {
      const own = await LocalRedisServer.start();
      const ownClient = await connectedClient(own);
      try {
        await own.kill();
        let failed = false;
        await listBudgets(ownClient, keys).catch(() => (failed = true));
        expect(failed).to.equal(true);
      } finally {
        ownClient.disconnect();
        await own.stop();
      }
    });
  });

  describe('on a Redis Cluster', () => {
    const redisCluster = useRedisCluster();

    it('lists the hashes of every master node', async () => {
      const symbols = Array.from({ length: 30 }, (_, i) => `S${i}USDT`);
      await seed(redisCluster.client, symbols);
      const listed = await listBudgets(redisCluster.client, keys);
      expect(listed.map((b) => b.symbol)).to.deep.equal([...symbols].sort());
    });
  });
});
