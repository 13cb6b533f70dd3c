import { expect } from 'chai';
import { scanKeys } from '../../../lib/redis/key-scanner';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, useRedisServer } from '../../support/redis';
import { useRedisCluster } from '../../support/redis-cluster';

async function seed(client: RedisClient, count: number): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, i) => `quantum:position:snapshot:S${i}USDT`);
  // One command per key: works on a Redis Cluster too, where one command may not span slots.
  await Promise.all(keys.map((key) => client.hset(key, 'position_amt', '1')));
  await client.hset('quantum:state:market:S0USDT', 'vol_regime', 'LOW');
  return keys;
}

describe('scanKeys', () => {
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());

  it('finds every matching key once and nothing else, in one SCAN call while the keyspace is smaller than COUNT', async () => {
    const keys = await seed(client, 250);
    const result = await scanKeys(client, 'quantum:position:snapshot:*', 10000);
    expect(result.keys.sort()).to.deep.equal(keys.sort());
    expect(result.pages).to.equal(1);
  });

  it('follows the cursor over several pages when COUNT is smaller than the keyspace, never listing a key twice', async () => {
    const keys = await seed(client, 250);
    const result = await scanKeys(client, 'quantum:position:snapshot:*', 20);
    expect(result.keys).to.have.length(keys.length);
    expect(new Set(result.keys).size).to.equal(keys.length);
    expect(result.pages).to.be.greaterThan(1);
  });

  it('answers an empty list for a pattern that matches nothing', async () => {
    expect(await scanKeys(client, 'quantum:position:snapshot:*', 100)).to.deep.equal({ keys: [], pages: 1 });
  });
});

describe('scanKeys on a Redis Cluster', () => {
  const cluster = useRedisCluster();

  it('scans every master, so keys in every slot range are found', async () => {
    const keys = await seed(cluster.client, 120);
    const result = await scanKeys(cluster.client, 'quantum:position:snapshot:*', 1000);
    expect(result.keys.sort()).to.deep.equal(keys.sort());
    expect(result.pages).to.equal(3);
  });
});
