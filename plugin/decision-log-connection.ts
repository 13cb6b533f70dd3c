import Redis from 'ioredis';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';

/**
 * A connection for the log, made from the gate's client: the same server, credentials and TLS,
 * its own socket, a time limit suited to batched writes, never an offline queue.
 */
export function duplicateForLog(client: RedisClient, logger: Logger, writeTimeoutMs: number): RedisClient {
  const overrides = {
    connectionName: 'p28-decision-log',
    commandTimeout: writeTimeoutMs,
    enableAutoPipelining: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
  };
  const writer =
    client instanceof Redis
      ? client.duplicate(overrides)
      : client.duplicate([], { redisOptions: { ...client.options.redisOptions, ...overrides, lazyConnect: undefined } });
  writer.on('error', (error: Error) => logger.debug({ err: error.message }, 'decision log redis error'));
  return writer;
}
