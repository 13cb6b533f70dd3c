import { expect } from 'chai';
import { createRedisClient, type RedisClient, type RedisConnectOptions } from '../../../lib/redis/client';
import { redisModeFor, redisModeOf } from '../../../lib/redis/redis-modes';

describe('Redis deployment modes', () => {
  const url = 'redis://127.0.0.1:1';
  const made: RedisClient[] = [];
  // Lazy clients never connect: the mode is read from how the client was made.
  const lazy = (options: Partial<RedisConnectOptions>): RedisClient => {
    const client = createRedisClient({ url, profile: 'gate', lazyConnect: true, ...options });
    made.push(client);
    return client;
  };
  after(() => made.forEach((client) => client.disconnect()));

  it('picks the mode from the connect options: Cluster by its seed nodes, Sentinel by its Sentinels, else standalone', () => {
    expect(redisModeFor({ url, profile: 'worker' }).name).to.equal('standalone');
    expect(redisModeFor({ url, profile: 'worker', sentinels: [], clusterNodes: [] }).name).to.equal('standalone');
    expect(redisModeFor({ url, profile: 'worker', sentinels: [{ host: 'h', port: 26379 }] }).name).to.equal('sentinel');
    expect(redisModeFor({ url, profile: 'worker', clusterNodes: [{ host: 'h', port: 7000 }] }).name).to.equal('cluster');
  });

  it('a standalone client: transactions span keys, SCAN on itself, its own command timeout, tracking through itself', () => {
    const client = lazy({ commandTimeoutMs: 123 });
    const mode = redisModeOf(client);
    expect(mode.name).to.equal('standalone');
    expect(mode.transactionsSpanKeys).to.equal(true);
    expect(mode.scanNodes(client)).to.deep.equal([client]);
    expect(mode.commandTimeoutMs(client)).to.equal(123);
    expect(mode.trackingConnection(client)).to.equal(client);
  });

  it('a Sentinel client can do what a standalone one can, through its one connection to the master', () => {
    const client = lazy({ sentinels: [{ host: '127.0.0.1', port: 1 }] });
    const mode = redisModeOf(client);
    expect(mode.name).to.equal('sentinel');
    expect(mode.transactionsSpanKeys).to.equal(true);
    expect(mode.commandTimeoutMs(client)).to.equal(250);
    expect(mode.trackingConnection(client)).to.equal(client);
  });

  it('a Cluster client: no transaction across slots, no tracking, the command timeout of its node connections', () => {
    const client = lazy({ clusterNodes: [{ host: '127.0.0.1', port: 1 }], commandTimeoutMs: 77 });
    const mode = redisModeOf(client);
    expect(mode.name).to.equal('cluster');
    expect(mode.transactionsSpanKeys).to.equal(false);
    expect(mode.commandTimeoutMs(client)).to.equal(77);
    expect(mode.trackingConnection(client)).to.equal(undefined);
  });
});
