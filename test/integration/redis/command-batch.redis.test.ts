import { socketWrites } from '../../support/socket-writes';
import { expect } from 'chai';
import { atomic, command, execBatch, type BatchItem, type BatchOutcome } from '../../../lib/redis/command-batch';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, useRedisServer } from '../../support/redis';
import { useRedisCluster } from '../../support/redis-cluster';

/** `calls` of each command in INFO commandstats. */
async function commandCalls(client: RedisClient): Promise<Record<string, number>> {
  const info = await client.info('commandstats');
  return Object.fromEntries([...info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

async function rejection(promise: Promise<unknown>): Promise<Error | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

describe('execBatch', () => {
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());
  beforeEach(async () => {
    await client.flushall();
    await client.set('a-string', 'x');
    await client.hset('h', { f: '1' });
  });

  const items: BatchItem[] = [
    command('hgetall', 'h'),
    command('hgetall', 'missing'),
    command('hgetall', 'a-string'),
    atomic(command('hset', 't', 'f', '2'), command('expire', 't', 30)),
    atomic(command('hset', 'a-string', 'f', '2'), command('expire', 'a-string', 30)),
    atomic(command('hdel', 'h', 'f'), command('hset', 'h', 'g', '3'), command('hgetall', 'h')),
  ];

  function expectOutcomes(outcomes: BatchOutcome[]): void {
    expect(outcomes).to.have.length(6);
    expect(outcomes[0]).to.deep.equal({ error: null, value: { f: '1' } });
    expect(outcomes[1]).to.deep.equal({ error: null, value: {} });
    expect(outcomes[2]!.error?.message).to.match(/^WRONGTYPE/);
    expect(outcomes[3]).to.deep.equal({ error: null, value: [1, 1] });
    expect(outcomes[4]!.error?.message).to.match(/^WRONGTYPE/);
    expect(outcomes[5]).to.deep.equal({ error: null, value: [1, 1, { g: '3' }] });
  }

  it('sends commands and atomic items as one write on a standalone connection, one outcome per item', async () => {
    let outcomes: BatchOutcome[] = [];
    const writes = await socketWrites(client, async () => {
      outcomes = await execBatch(client, items);
    });
    expectOutcomes(outcomes);
    expect(writes).to.equal(1);
    expect(await client.ttl('t')).to.be.within(1, 30);
  });

  it('applies consecutive atomic items in shared MULTI/EXEC blocks of at most transactionCommands commands', async () => {
    const before = await commandCalls(client);
    const writes = Array.from({ length: 300 }, (_, i) => atomic(command('hset', `k${i}`, 'f', String(i)), command('expire', `k${i}`, 30)));
    const outcomes = await execBatch(client, writes, { transactionCommands: 100 });
    const after = await commandCalls(client);
    expect(outcomes.every((o) => o.error === null)).to.equal(true);
    // 50 items (100 commands) per block.
    expect(after.multi! - (before.multi ?? 0)).to.equal(6);
    expect(after.exec! - (before.exec ?? 0)).to.equal(6);
    expect(after.hset! - (before.hset ?? 0)).to.equal(300);
    expect(await client.hget('k299', 'f')).to.equal('299');
    expect(await client.ttl('k299')).to.be.within(1, 30);
  });

  it('fails every item of a block Redis refuses while queuing, with the reason, and applies none of it', async () => {
    const batch = [
      atomic(command('hset', 'x1', 'f', '1'), command('expire', 'x1', 30)),
      atomic(command('hset', 'x2'), command('expire', 'x2', 30)), // wrong number of arguments
      atomic(command('hset', 'x3', 'f', '1'), command('expire', 'x3', 30)),
      command('hgetall', 'h'),
      atomic(command('hset', 'x4', 'f', '1'), command('expire', 'x4', 30)),
    ];
    const outcomes = await execBatch(client, batch);
    for (const i of [0, 1, 2]) expect(outcomes[i]!.error?.message, `item ${i}`).to.match(/wrong number of arguments/);
    expect(outcomes[3]).to.deep.equal({ error: null, value: { f: '1' } });
    expect(outcomes[4]).to.deep.equal({ error: null, value: [1, 1] });
    expect(await client.exists('x1', 'x2', 'x3')).to.equal(0);
    expect(await client.exists('x4')).to.equal(1);
  });

  it('splits a large batch into pipelines of about chunkCommands commands and keeps the outcomes in order', async () => {
    const batch: BatchItem[] = [];
    for (let i = 0; i < 2000; i++) {
      batch.push(i % 3 === 0 ? command('hgetall', i % 2 === 0 ? 'h' : 'a-string') : atomic(command('hset', `c${i}`, 'i', String(i)), command('expire', `c${i}`, 30)));
    }
    let outcomes: BatchOutcome[] = [];
    const writes = await socketWrites(client, async () => {
      outcomes = await execBatch(client, batch, { chunkCommands: 500, transactionCommands: 20 });
    });
    // 667 reads, and 667 blocks (MULTI, two writes of two commands, EXEC) between them: 4,667 commands.
    expect(writes).to.be.within(Math.ceil(4667 / 500), Math.ceil(4667 / 500) + 1);
    outcomes.forEach((outcome, i) => {
      if (i % 3 !== 0) expect(outcome, `item ${i}`).to.deep.equal({ error: null, value: [1, 1] });
      else if (i % 2 === 0) expect(outcome, `item ${i}`).to.deep.equal({ error: null, value: { f: '1' } });
      else expect(outcome.error?.message, `item ${i}`).to.match(/^WRONGTYPE/);
    });
    expect(await client.hget('c1999', 'i')).to.equal('1999');
  });

  it('rejects when the batch cannot be sent at all', async () => {
    const gone = await connectedClient(redis.server);
    gone.disconnect();
    expect(await rejection(execBatch(gone, [command('get', 'x')]))).to.be.instanceOf(Error);
  });

  describe('time limits', () => {
    /** Holds the server busy for `ms` (a script that spins), as a slow or loaded Redis would. */
    async function holdServer(ms: number): Promise<void> {
      const other = await connectedClient(redis.server, 'worker', 30000);
      try {
        await other.eval(`local t = redis.call('TIME'); local stop = t[1] * 1000000 + t[2] + ${ms * 1000}
          repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop
          return 1`, 0);
      } finally {
        other.disconnect();
      }
    }

    it('gives a pipeline the base limit plus perCommandMs for each command in flight', async () => {
      const batch = Array.from({ length: 200 }, (_, i) => command('get', `g${i}`));
      const busy = holdServer(500);
      await new Promise((r) => setTimeout(r, 50));
      // 100 ms + 200 commands x 5 ms = 1100 ms, past the 450 ms the server stays busy.
      const outcomes = await execBatch(client, batch, { baseTimeoutMs: 100, perCommandMs: 5 });
      await busy;
      expect(outcomes.every((o) => o.error === null && o.value === null)).to.equal(true);
    });

    it('rejects the batch with the timeout when the base limit alone is too short', async () => {
      const batch = Array.from({ length: 200 }, (_, i) => command('get', `g${i}`));
      const busy = holdServer(500);
      await new Promise((r) => setTimeout(r, 50));
      const error = await rejection(execBatch(client, batch, { baseTimeoutMs: 100, perCommandMs: 0 }));
      await busy;
      expect(error?.message).to.match(/timed out/);
    });

    it('fails within about the base limit when Redis stops answering, and sends no further pipeline', async function () {
      this.timeout(10000);
      const batch = Array.from({ length: 1000 }, (_, i) => command('get', `g${i}`));
      redis.server.pause();
      let error: Error | undefined;
      const started = Date.now();
      let writes: number | undefined;
      try {
        writes = await socketWrites(client, async () => {
          error = await rejection(execBatch(client, batch, { baseTimeoutMs: 200, perCommandMs: 0.1, chunkCommands: 100, chunksInFlight: 2 }));
        });
      } finally {
        redis.server.resume();
      }
      const elapsed = Date.now() - started;
      expect(error?.message).to.match(/timed out/);
      // Two pipelines in flight, 200 commands: 200 ms + 200 x 0.1 ms each.
      expect(elapsed).to.be.within(200, 3000);
      expect(writes).to.equal(2);
    });
  });

  describe('on a Redis Cluster', () => {
    const redisCluster = useRedisCluster();

    it('gives the same outcomes for keys spread over all nodes, each atomic item in its own transaction', async () => {
      const cluster = redisCluster.client;
      await cluster.set('a-string', 'x');
      await cluster.hset('h', { f: '1' });
      const spread = Array.from({ length: 50 }, (_, i) => atomic(command('hset', `k${i}`, 'f', '1'), command('expire', `k${i}`, 30)));
      const outcomes = await execBatch(cluster, [...items, ...spread], { chunkCommands: 40 });
      expectOutcomes(outcomes.slice(0, 6));
      expect(outcomes.slice(6).every((o) => o.error === null)).to.equal(true);
      const slots = new Set(await Promise.all(Array.from({ length: 50 }, (_, i) => cluster.call('cluster', 'keyslot', `k${i}`))));
      expect(slots.size).to.be.greaterThan(40);
      expect(await cluster.ttl('k49')).to.be.within(1, 30);
    });
  });
});
