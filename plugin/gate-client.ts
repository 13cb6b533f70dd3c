import type { Logger } from '../lib/logger';
import { createRedisClient, type RedisClient } from '../lib/redis/client';
import { withScripts, type ScriptCommands } from '../lib/redis/lua-scripts';
import type { ResolvedGateOptions } from './gate-options';

/** How long `close()` waits for the gate's own connection to finish closing, in ms. */
const CLOSE_WAIT_MS = 1000;

/**
 * The gate's Redis client: option `redis` as given (it stays the host's to close), else a
 * connection of the gate's own to `redisUrl`, whose command timeout is `timeoutMs`.
 */
export function gateClient(o: ResolvedGateOptions, logger: Logger): { client: RedisClient & ScriptCommands; owned: boolean } {
  if (o.redis) return { client: withScripts(o.redis), owned: false };
  const client = withScripts(createRedisClient({
    url: o.redisUrl as string,
    profile: 'gate',
    commandTimeoutMs: o.timeoutMs,
    connectionName: 'p28-budget-gate',
    autoPipelining: o.autoPipelining,
  }));
  // Connection errors surface as fail-open decisions; the listener only keeps ioredis from
  // reporting them as unhandled.
  client.on('error', (error: Error) => logger.debug({ err: error.message }, 'budget gate redis error'));
  return { client, owned: true };
}

/**
 * Waits for the client's `end` while it has a connection to close. A client that was
 * reconnecting has none, and ioredis emits no `end` for it: nothing to wait for.
 */
export function clientEnded(client: RedisClient): Promise<void> {
  if (!['connecting', 'connect', 'ready'].includes(client.status)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('end', done);
      resolve();
    };
    const timer = setTimeout(done, CLOSE_WAIT_MS);
    client.once('end', done);
  });
}
