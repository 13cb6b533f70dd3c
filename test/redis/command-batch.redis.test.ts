import { socketWrites } from '../support/socket-writes';
import { expect } from 'chai';
import { command, execBatch, type RedisCommand } from '../../lib/redis/command-batch';
import { withScripts } from '../../lib/redis/lua-scripts';
import type { RedisClient } from '../../lib/redis/client';
import { connectedClient, useRedisServer } from '../support/redis';
import { useRedisCluster } from '../support/redis-cluster';

describe('execBatch', () => {
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = withScripts(await connectedClient(redis.server));
  });
  after(() => client.disconnect());
  beforeEach(async () => {
    await client.flushall();
    await client.set('a-string', 'x');
    await client.hset('h', { f: '1' });
  });

  const items: RedisCommand[] = [
    command('hgetall', 'h'),
    command('hgetall', 'missing'),
    command('hgetall', 'a-string'),
    command('p28WriteBudget', 't', 30, 0, 'f', '2'),
    command('p28WriteBudget', 'a-string', 30, 0, 'f', '2'),
  ];

  function expectOutcomes(outcomes: Awaited<ReturnType<typeof execBatch>>): void {
    expect(outcomes).to.have.length(5);
    expect(outcomes[0]).to.deep.equal({ error: null, value: { f: '1' } });
    expect(outcomes[1]).to.deep.equal({ error: null, value: {} });
    expect(outcomes[2]!.error?.message).to.match(/^WRONGTYPE/);
    expect(outcomes[3]).to.deep.equal({ error: null, value: 1 });
    expect(outcomes[4]!.error?.message).to.match(/WRONGTYPE/);
  }

  it('sends a batch of commands and script calls as one write on a standalone connection', async () => {
    let outcomes: Awaited<ReturnType<typeof execBatch>> = [];
    const writes = await socketWrites(client, async () => {
      outcomes = await execBatch(client, items);
    });
    expectOutcomes(outcomes);
    expect(writes).to.equal(1);
    expect(await client.ttl('t')).to.be.greaterThan(0);
  });

  it('rejects when the batch cannot be sent at all', async () => {
    const gone = await connectedClient(redis.server);
    gone.disconnect();
    let failure: unknown;
    try {
      await execBatch(gone, [command('get', 'x')]);
    } catch (error) {
      failure = error;
    }
    expect(failure).to.be.instanceOf(Error);
  });

  describe('on a Redis Cluster', () => {
    const redisCluster = useRedisCluster();
    const clusterClient = () => withScripts(redisCluster.client);

    it('gives the same outcomes for keys spread over all nodes, without a cross-slot error', async () => {
      await clusterClient().set('a-string', 'x');
      await clusterClient().hset('h', { f: '1' });
      const spread = Array.from({ length: 50 }, (_, i) => command('p28WriteBudget', `k${i}`, 30, 0, 'f', '1'));
      const outcomes = await execBatch(clusterClient(), [...items, ...spread]);
      expectOutcomes(outcomes.slice(0, 5));
      expect(outcomes.slice(5).every((o) => o.error === null)).to.equal(true);
      const slots = new Set(await Promise.all(Array.from({ length: 50 }, (_, i) => clusterClient().call('cluster', 'keyslot', `k${i}`))));
      expect(slots.size).to.be.greaterThan(40);
      expect(await clusterClient().ttl('k49')).to.be.greaterThan(0);
    });
  });
});
