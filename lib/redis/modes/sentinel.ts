import Redis from 'ioredis';
import { profileOptions, REDIS_DEFAULTS, urlOptions, type RedisClient, type RedisConnectOptions } from '../connect-options';
import type { RedisMode } from './redis-mode';
import { STANDALONE, withSilenceProbe } from './standalone';

/**
 * A master found through Sentinels (REDIS_SENTINELS, REDIS_SENTINEL_NAME): one connection to the
 * current master, so it can do what a standalone server can.
 */
export const SENTINEL: RedisMode = Object.freeze({
  ...STANDALONE,
  name: 'sentinel',
  configured: (options: RedisConnectOptions) => (options.sentinels?.length ?? 0) > 0,
  owns: (client: RedisClient) => !client.isCluster && ((client as Redis).options.sentinels?.length ?? 0) > 0,
  createClient: (options: RedisConnectOptions) => {
    const fromUrl = urlOptions(options.url, options.tls);
    const client = new Redis({
      ...profileOptions(options),
      sentinels: options.sentinels,
      name: options.sentinelName ?? 'mymaster',
      username: fromUrl.username,
      password: fromUrl.password,
      // Unset means the Sentinels have no password: the master's password is never sent to them.
      sentinelPassword: options.sentinelPassword,
      db: fromUrl.db,
      tls: fromUrl.tls,
      enableTLSForSentinelMode: fromUrl.tls !== undefined,
      sentinelTLS: fromUrl.tls,
      // Subscribe to the Sentinels' +switch-master and reconnect at once: a master that hangs
      // (SIGSTOP, a frozen VM) keeps its TCP connections open, so nothing else would tell.
      failoverDetector: true,
      sentinelCommandTimeout: REDIS_DEFAULTS.connectTimeoutMs,
    });
    return withSilenceProbe(client, options);
  },
});
