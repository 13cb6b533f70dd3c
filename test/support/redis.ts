import { LocalRedisServer } from './local-redis-server';
import { createRedisClient, waitForReady, type RedisClient, type RedisProfile } from '../../lib/redis/client';

/**
 * Starts a private redis-server for the calling `describe` block and stops it afterwards.
 * Suites that pause or kill the server get one of their own this way.
 */
export function useRedisServer(): { readonly server: LocalRedisServer } {
  const holder: { server?: LocalRedisServer } = {};
  before(async function () {
    this.timeout(15000);
    holder.server = await LocalRedisServer.start();
  });
  after(async () => {
    await holder.server?.stop();
  });
  return {
    get server(): LocalRedisServer {
      if (!holder.server) throw new Error('redis-server not started yet');
      return holder.server;
    },
  };
}

/** A connected client of the given profile; the caller quits it. */
export async function connectedClient(server: LocalRedisServer, profile: RedisProfile = 'worker', commandTimeoutMs?: number): Promise<RedisClient> {
  const client = createRedisClient({ url: server.url, profile, commandTimeoutMs });
  client.on('error', () => undefined);
  await waitForReady(client, 5000);
  return client;
}

/** Polls `check` until it returns true or `timeoutMs` passes (for real processes and servers). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Waits until `client` answers PING again, as after a restart of its server. */
export async function untilPong(client: RedisClient, timeoutMs = 10000): Promise<void> {
  await eventually(async () => {
    try {
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }, timeoutMs);
}
