import { expect } from 'chai';
import { LocalRedisServer } from '../../support/local-redis-server';
import { createRedisClient, REDIS_DEFAULTS, waitForReady } from '../../../lib/redis/client';
import { connectedClient, eventually, useRedisServer, untilPong } from '../../support/redis';

describe('createRedisClient', () => {
  const redis = useRedisServer();

  it('fails a gate command at once when the server is gone, without queueing it', async () => {
    const server = await LocalRedisServer.start();
    const client = await connectedClient(server, 'gate');
    await server.kill();
    await eventually(() => client.status !== 'ready');
    const started = Date.now();
    let failure: unknown;
    try {
      await client.hgetall('k');
    } catch (error) {
      failure = error;
    }
    expect(failure).to.be.instanceOf(Error);
    expect(Date.now() - started).to.be.lessThan(1000);
    client.disconnect();
  });

  it('times a gate command out after commandTimeoutMs when the server stops answering', async () => {
    const client = await connectedClient(redis.server, 'gate', 100);
    redis.server.pause();
    try {
      let failure: Error | undefined;
      try {
        await client.get('k');
      } catch (error) {
        failure = error as Error;
      }
      expect(failure?.message).to.match(/timed out/i);
    } finally {
      redis.server.resume();
      client.disconnect();
    }
  });

  it('drops a worker connection whose server went silent (SIGSTOP) within the silence probe + command timeout, and reconnects after SIGCONT', async function () {
    this.timeout(20000);
    const server = await LocalRedisServer.start();
    const client = await connectedClient(server, 'worker');
    try {
      let droppedAfterMs: number | undefined;
      const frozenAt = Date.now();
      client.once('close', () => (droppedAfterMs = Date.now() - frozenAt));
      server.pause();
      const bound = REDIS_DEFAULTS.workerSilenceProbeMs * 1.5 + REDIS_DEFAULTS.workerCommandTimeoutMs + 1000;
      await eventually(() => droppedAfterMs !== undefined, bound + 2000, 50);
      expect(droppedAfterMs).to.be.below(bound);
      server.resume();
      await eventually(async () => (await client.ping().catch(() => '')) === 'PONG', 10000, 50);
    } finally {
      server.resume();
      client.disconnect();
      await server.stop();
    }
  });

  it('reconnects a worker client after the server restarts', async () => {
    const server = await LocalRedisServer.start();
    const client = await connectedClient(server, 'worker');
    try {
      await client.set('before', '1');
      await server.restart();
      await untilPong(client);
      expect(await client.get('before')).to.equal(null); // a fresh server: nothing was kept on disk
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('authenticates with the password in the URL', async () => {
    const admin = await connectedClient(redis.server);
    await admin.config('SET', 'requirepass', 's3cret');
    try {
      const client = createRedisClient({ url: `redis://:s3cret@127.0.0.1:${redis.server.port}/2`, profile: 'worker' });
      client.on('error', () => undefined);
      await waitForReady(client, 5000);
      await client.set('in-db-2', 'yes');
      expect(await client.get('in-db-2')).to.equal('yes');
      client.disconnect();
    } finally {
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });

  it('waitForReady rejects after its timeout when nothing listens', async () => {
    const client = createRedisClient({ url: 'redis://127.0.0.1:1', profile: 'gate' });
    client.on('error', () => undefined);
    let failure: Error | undefined;
    try {
      await waitForReady(client, 200);
    } catch (error) {
      failure = error as Error;
    }
    expect(failure?.message).to.contain('not ready after 200 ms');
    client.disconnect();
  });
});
