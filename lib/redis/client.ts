import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { isTimeout } from './error-cause';
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
function urlOptions(raw: string, tls: RedisConnectOptions['tls']): RedisOptions {
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

function profileOptions(options: RedisConnectOptions): RedisOptions {
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

function withoutLazyConnect(options: RedisOptions): RedisOptions {
  const { lazyConnect: _ignored, ...rest } = options;
  return rest;
}

/**
 * The one ioredis factory used by the worker, the gate, the benchmarks and the demo.
 * Standalone, Sentinel or Cluster, with the fail-fast settings of the chosen profile.
 */
export function createRedisClient(options: RedisConnectOptions): RedisClient {
  const fromUrl = urlOptions(options.url, options.tls);
  const base = profileOptions(options);
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      lazyConnect: base.lazyConnect,
      enableAutoPipelining: base.enableAutoPipelining,
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
  const client =
    options.sentinels && options.sentinels.length > 0
      ? new Redis({
          ...base,
          sentinels: options.sentinels,
          name: options.sentinelName ?? 'mymaster',
          username: fromUrl.username,
          password: fromUrl.password,
          sentinelPassword: options.sentinelPassword ?? fromUrl.password,
          db: fromUrl.db,
          tls: fromUrl.tls,
          enableTLSForSentinelMode: fromUrl.tls !== undefined,
          sentinelTLS: fromUrl.tls,
          // Subscribe to the Sentinels' +switch-master and reconnect at once: a master that hangs
          // (SIGSTOP, a frozen VM) keeps its TCP connections open, so nothing else would tell.
          failoverDetector: true,
          sentinelCommandTimeout: REDIS_DEFAULTS.connectTimeoutMs,
        })
      : new Redis({ ...fromUrl, ...base });
  if (options.profile === 'worker') reconnectWhenSilent(client, REDIS_DEFAULTS.workerSilenceProbeMs);
  return client;
}

/**
 * Drops and remakes the connection when the server stops answering but keeps its connection open
 * (SIGSTOP, a hung host): the kernel answers TCP keep-alives for a stopped process, so only an
 * unanswered command tells. A PING is sent only after `silenceMs` without any reply, and only one at
 * a time, so a busy connection carries no extra traffic.
 */
function reconnectWhenSilent(client: Redis, silenceMs: number): void {
  let lastHeardAt = performance.now();
  const heard = (): void => {
    lastHeardAt = performance.now();
  };
  client.on('ready', () => {
    heard();
    client.stream?.on('data', heard);
  });
  let probing = false;
  const timer = setInterval(() => {
    if (probing || client.status !== 'ready' || performance.now() - lastHeardAt < silenceMs) return;
    probing = true;
    client
      .ping()
      .then(heard, (error: Error) => {
        // Destroy, not end: a stopped peer never sends its FIN, so a graceful close would wait for
        // it; a destroyed socket is a lost connection, which ioredis remakes at once.
        if (client.status === 'ready' && isTimeout(error)) client.stream?.destroy();
      })
      .finally(() => {
        probing = false;
      });
  }, silenceMs / 2);
  timer.unref();
  client.once('end', () => clearInterval(timer));
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
