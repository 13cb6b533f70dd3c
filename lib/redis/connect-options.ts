import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { parseRedisUrl } from './redis-url';

/**
 * What a Redis connection is made from, whatever the deployment: the options, the profiles' defaults
 * and the ioredis options they give. Each deployment mode (`modes/`) builds its client from these.
 */

/** One host:port of a Redis Sentinel or Cluster seed list. */
export interface HostPort {
  host: string;
  port: number;
}

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
  /** Password of the Sentinels when they have their own (REDIS_SENTINEL_PASSWORD); default: the URL's. */
  sentinelPassword?: string;
  /**
   * TLS material for rediss:// (PEM text): a private CA, and a client certificate and key for
   * servers with `tls-auth-clients yes`. Used for the Sentinels too when they are reached by TLS.
   */
  tls?: { ca?: string; cert?: string; key?: string };
  /** ioredis `enableAutoPipelining`: commands issued in the same tick go out in one write. */
  autoPipelining?: boolean;
}

export const REDIS_DEFAULTS = Object.freeze({
  gateCommandTimeoutMs: 250,
  workerCommandTimeoutMs: 1000,
  connectTimeoutMs: 2000,
  /**
   * How long a dropped connection may take to close before its socket is destroyed. A hung server
   * never sends its FIN, so ioredis's default (2 s) would delay leaving it by that much after a
   * Sentinel failover.
   */
  disconnectTimeoutMs: 100,
  maxReconnectDelayMs: 2000,
  /**
   * A worker connection that has heard nothing for this long is sent a PING; if that times out the
   * connection is dropped and made again (through the Sentinels, to whichever master they name).
   */
  workerSilenceProbeMs: 2000,
});

/** ioredis options from a URL: host, port, user, password, db and TLS for rediss://. Throws `RedisUrlError`. */
export function urlOptions(raw: string, tls: RedisConnectOptions['tls']): RedisOptions {
  const url = parseRedisUrl(raw);
  return {
    host: url.host,
    port: url.port,
    username: url.username,
    password: url.password,
    db: url.db,
    tls: url.tls ? { ...tls } : undefined,
  };
}

export function profileOptions(options: RedisConnectOptions): RedisOptions {
  const gate = options.profile === 'gate';
  return {
    // ioredis 6 speaks RESP3 by default; RESP2 keeps replies, CLIENT TRACKING redirection and the
    // servers supported (no HELLO needed) exactly as they were under ioredis 5.
    protocol: 2,
    enableOfflineQueue: false,
    maxRetriesPerRequest: gate ? 0 : 1,
    commandTimeout:
      options.commandTimeoutMs ?? (gate ? REDIS_DEFAULTS.gateCommandTimeoutMs : REDIS_DEFAULTS.workerCommandTimeoutMs),
    connectTimeout: REDIS_DEFAULTS.connectTimeoutMs,
    disconnectTimeout: REDIS_DEFAULTS.disconnectTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), REDIS_DEFAULTS.maxReconnectDelayMs),
    connectionName: options.connectionName,
    lazyConnect: options.lazyConnect ?? false,
    enableAutoPipelining: options.autoPipelining ?? false,
  };
}

export function withoutLazyConnect(options: RedisOptions): RedisOptions {
  const { lazyConnect: _ignored, ...rest } = options;
  return rest;
}

