import { expect } from 'chai';
import type { RedisClient } from '../../../lib/redis/client';
import { FENCED_WRITE, execFencedBatch, fencedWriteCommand, type Fence } from '../../../lib/redis/fenced-write';
import { connectedClient, useRedisServer } from '../../support/redis';

const LEASE = 'lease';
const KEY = 'quantum:portfolio:budget:BTCUSDT';
const fence = (epoch: string, token = 'w/abc'): Fence => ({ epoch, leaseKey: LEASE, leaseValue: `${token}/${epoch}` });

describe('fenced writes (fenced-write-1.lua)', () => {
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());

  const write = async (f: Fence, fields: Record<string, string>, del: string[] = []) => {
    const [outcome] = await execFencedBatch(client, [fencedWriteCommand(client, f, KEY, 60, del, fields)]);
    if (outcome!.error) throw outcome!.error;
    return outcome!.value;
  };

  it('writes, deletes and sets the TTL while the lease holds the writer\'s value, and loads the script after SCRIPT FLUSH', async () => {
    await client.set(LEASE, fence('100').leaseValue);
    expect(await write(fence('100'), { old: 'x' })).to.equal(FENCED_WRITE.written);
    await client.script('FLUSH');
    expect(await write(fence('100'), { mode: 'enforce', timestamp: '1' }, ['old'])).to.equal(FENCED_WRITE.written);
    expect(await client.hgetall(KEY)).to.deep.equal({ mode: 'enforce', timestamp: '1', writer_epoch: '100' });
    expect(await client.ttl(KEY)).to.be.within(1, 60);
  });

  it('refuses a writer whose lease passed to another (standalone and Sentinel: the lease key is checked)', async () => {
    await client.set(LEASE, fence('200', 'w/new').leaseValue);
    await client.hset(KEY, { mode: 'shadow' });
    expect(await write(fence('100'), { mode: 'enforce' })).to.equal(FENCED_WRITE.leaseLost);
    expect(await client.hget(KEY, 'mode')).to.equal('shadow');
  });

  it('refuses a write older than the hash\'s writer_epoch when only the hash is given (Redis Cluster)', async () => {
    await client.hset(KEY, { mode: 'shadow', writer_epoch: '200' });
    await client.script('LOAD', (await import('node:fs')).readFileSync(`${__dirname}/../../../lib/redis/lua/fenced-write-1.lua`, 'utf8'));
    const [cmd, sha, , key, ...args] = fencedWriteCommand(client, fence('100'), KEY, 60, [], { mode: 'enforce' });
    void cmd;
    // The one-key form, as sent on a Cluster (the lease key left out).
    const older = await client.call('evalsha', String(sha), 1, String(key), ...args.slice(1).map(String));
    expect(older).to.equal(FENCED_WRITE.newerWriter);
    expect(await client.hget(KEY, 'mode')).to.equal('shadow');
    const newer = await client.call('evalsha', String(sha), 1, String(key), '300', ...args.slice(2).map(String));
    expect(newer).to.equal(FENCED_WRITE.written);
    expect(await client.hmget(KEY, 'mode', 'writer_epoch')).to.deep.equal(['enforce', '300']);
  });

  it('answers WRONGTYPE for a key of another type, as an error of that item only', async () => {
    await client.set(LEASE, fence('100').leaseValue);
    await client.set(KEY, 'not a hash');
    const [outcome] = await execFencedBatch(client, [fencedWriteCommand(client, fence('100'), KEY, 60, [], { mode: 'enforce' })]);
    expect(outcome!.error?.message).to.match(/WRONGTYPE/);
  });
});
