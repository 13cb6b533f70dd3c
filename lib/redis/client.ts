import { readFileSync } from 'node:fs';
import { redisModeFor } from './redis-modes';
import type { HostPort, RedisClient, RedisConnectOptions } from './connect-options';

export { REDIS_DEFAULTS, type HostPort, type RedisClient, type RedisConnectOptions, type RedisProfile } from './connect-options';
export { redactUrl } from './redis-url';

/**
 * The one ioredis factory used by the worker, the gate, the benchmarks and the demo.
 * Standalone, Sentinel or Cluster (the mode the options ask for, `redis-modes.ts`), with the
 * fail-fast settings of the chosen profile.
 */
export function createRedisClient(options: RedisConnectOptions): RedisClient {
  return redisModeFor(options).createClient(options);
}

/**
 * The connection settings of the worker's configuration (REDIS_URL, REDIS_SENTINELS, ...). Declared
 * here, not taken from `WorkerConfig`, so that Redis access never depends on the worker's config.
 */
export interface RedisConnectionConfig {
  redisUrl: string;
  redisSentinels: HostPort[];
  redisSentinelName: string | undefined;
  redisClusterNodes: HostPort[];
  redisSentinelPassword: string | undefined;
  redisTlsCaFile: string | undefined;
  redisTlsCertFile: string | undefined;
  redisTlsKeyFile: string | undefined;
}

/**
 * The connection options of a worker configuration: REDIS_URL, and the Sentinel or Cluster seed
 * list when one is set. The one place the worker, its service and its CLI turn config into a client.
 */
export function redisOptionsFromConfig(config: RedisConnectionConfig, connectionName: string): RedisConnectOptions {
  return {
    url: config.redisUrl,
    sentinels: config.redisSentinels,
    sentinelName: config.redisSentinelName,
    clusterNodes: config.redisClusterNodes,
    sentinelPassword: config.redisSentinelPassword,
    tls: tlsMaterial(config),
    profile: 'worker',
    connectionName,
  };
}

/** The PEM files named by REDIS_TLS_*_FILE, read when a client is made (so a renewed certificate is picked up on restart). */
function tlsMaterial(config: RedisConnectionConfig): RedisConnectOptions['tls'] {
  const read = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file, 'utf8'));
  if (!config.redisTlsCaFile && !config.redisTlsCertFile && !config.redisTlsKeyFile) return undefined;
  return { ca: read(config.redisTlsCaFile), cert: read(config.redisTlsCertFile), key: read(config.redisTlsKeyFile) };
}

/** Resolves when the client is ready, rejects after `timeoutMs`; never leaves a listener behind. */
export function waitForReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`Redis not ready after ${timeoutMs} ms (status ${client.status})`)), timeoutMs);
    const onReady = () => finish();
    const finish = (error?: Error) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      if (error) reject(error);
      else resolve();
    };
    client.on('ready', onReady);
  });
}
