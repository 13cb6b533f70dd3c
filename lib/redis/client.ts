import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { WorkerConfig } from '../config';
import { parseRedisUrl } from './redis-url';

/** One host:port of a Redis Sentinel or Cluster seed list. */
export interface HostPort {
  host: string;
  port: number;
}

export { redactUrl } from './redis-url';

/** An ioredis client or cluster: everything in this package accepts either. */
export type RedisClient = Redis | Cluster;

/**
 * `gate`: on the permit path. Never queue a command while disconnected, never retry a request:
 * a command either goes out now or fails now, so the gate can fail open at once.
 * `worker`: off the hot path. Still no offline queue (a cycle must not hang on a dead server),
 * one retry per request, reconnecting forever with a capped back-off.
 */
export type RedisProfile = 'gate' | 'worker';

export interface RedisConnectOptions {
  /** redis:// or rediss:// URL; also the source of credentials, TLS and db for Sentinel and Cluster. */
  url: string;
  /** When non-empty, connect through these Sentinels to `sentinelName`. */
  sentinels?: HostPort[];
  sentinelName?: string;
  /** When non-empty, connect to a Redis Cluster seeded by these nodes. */
  clusterNodes?: HostPort[];
  profile: RedisProfile;
  /** Per-command time limit in ms (default 1000 for the worker, 250 for the gate). */
  commandTimeoutMs?: number;
  /** CLIENT SETNAME, to tell replicas and gates apart in CLIENT LIST. */
  connectionName?: string;
  /** Do not connect until the first command or `connect()`. */
  lazyConnect?: boolean;
}

export const REDIS_DEFAULTS = Object.freeze({
  gateCommandTimeoutMs: 250,
  workerCommandTimeoutMs: 1000,
  connectTimeoutMs: 2000,
  maxReconnectDelayMs: 2000,
});

/** ioredis options from a URL: host, port, user, password, db and TLS for rediss://. Throws `RedisUrlError`. */
function urlOptions(raw: string): RedisOptions {
  const url = parseRedisUrl(raw);
  return {
    host: url.host,
    port: url.port,
    username: url.username,
    password: url.password,
    db: url.db,
    tls: url.tls ? {} : undefined,
  };
}

function profileOptions(options: RedisConnectOptions): RedisOptions {
  const gate = options.profile === 'gate';
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: gate ? 0 : 1,
    commandTimeout:
      options.commandTimeoutMs ?? (gate ? REDIS_DEFAULTS.gateCommandTimeoutMs : REDIS_DEFAULTS.workerCommandTimeoutMs),
    connectTimeout: REDIS_DEFAULTS.connectTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), REDIS_DEFAULTS.maxReconnectDelayMs),
    connectionName: options.connectionName,
    lazyConnect: options.lazyConnect ?? false,
  };
}

function withoutLazyConnect(options: RedisOptions): RedisOptions {
  const { lazyConnect: _ignored, ...rest } = options;
  return rest;
}

/**
 * The one ioredis factory used by the worker, the gate, the benchmarks and the demo.
 * Standalone, Sentinel or Cluster, with the fail-fast settings of the chosen profile.
 */
export function createRedisClient(options: RedisConnectOptions): RedisClient {
  const fromUrl = urlOptions(options.url);
  const base = profileOptions(options);
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      lazyConnect: base.lazyConnect,
      clusterRetryStrategy: base.retryStrategy,
      // ioredis connects each node on demand; a node option `lazyConnect: false` makes the
      // slot-refresh connection of a seed that is now a replica or gone fail, and the cluster
      // never becomes ready (a worker started after a failover never connected).
      redisOptions: {
        ...withoutLazyConnect(base),
        username: fromUrl.username,
        password: fromUrl.password,
        tls: fromUrl.tls,
      },
    };
    return new Cluster(options.clusterNodes, clusterOptions);
  }
  if (options.sentinels && options.sentinels.length > 0) {
    return new Redis({
      ...base,
      sentinels: options.sentinels,
      name: options.sentinelName ?? 'mymaster',
      username: fromUrl.username,
      password: fromUrl.password,
      sentinelPassword: fromUrl.password,
      db: fromUrl.db,
      tls: fromUrl.tls,
      enableTLSForSentinelMode: fromUrl.tls !== undefined,
    });
  }
  return new Redis({ ...fromUrl, ...base });
}

/**
 * The connection options of a worker configuration: REDIS_URL, and the Sentinel or Cluster seed
 * list when one is set. The one place the worker, its service and its CLI turn config into a client.
 */
export function redisOptionsFromConfig(config: WorkerConfig, connectionName: string): RedisConnectOptions {
  return {
    url: config.redisUrl,
    sentinels: config.redisSentinels,
    sentinelName: config.redisSentinelName,
    clusterNodes: config.redisClusterNodes,
    profile: 'worker',
    connectionName,
  };
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
