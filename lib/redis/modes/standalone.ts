import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { isTimeout } from '../error-cause';
import { profileOptions, REDIS_DEFAULTS, urlOptions, type RedisClient, type RedisConnectOptions } from '../connect-options';
import type { RedisMode } from './redis-mode';

/** One server (or a proxy in front of one), reached at REDIS_URL. */
export const STANDALONE: RedisMode = Object.freeze({
  name: 'standalone',
  configured: () => true,
  owns: (client: RedisClient) => !client.isCluster && !((client as Redis).options.sentinels?.length ?? 0),
  createClient: (options: RedisConnectOptions) => withSilenceProbe(new Redis({ ...urlOptions(options.url, options.tls), ...profileOptions(options) }), options),
  transactionsSpanKeys: true,
  scanNodes: (client: RedisClient) => [client as Redis],
  commandTimeoutMs: (client: RedisClient) => (client as Redis).options.commandTimeout,
  trackingConnection: (client: RedisClient) => client as Redis,
});

/** A worker connection gets the silence probe (`reconnectWhenSilent`); the gate's fails fast by itself. */
export function withSilenceProbe(client: Redis, options: RedisConnectOptions): Redis {
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

