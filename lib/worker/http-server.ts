import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Mode } from '../../types/mode';
import type { CycleResult } from './cycle-report';
import type { RedisClient } from '../redis/client';
import { SERVICE_NAME, silentLogger, type Logger } from '../logger';


export const HTTP_SERVER_DEFAULTS = Object.freeze({
  /** How long /health waits for Redis to answer PING before it reports it disconnected. */
  redisPingTimeoutMs: 500,
});

/** The body of GET /health. */
export interface HealthBody {
  status: 'healthy' | 'unhealthy';
  service: typeof SERVICE_NAME;
  /** The effective mode of this replica's latest cycle. */
  mode: Mode;
  redis: 'connected' | 'disconnected';
  role: 'leader' | 'standby';
  /** Seconds since the last cycle that ended ok or standby; null before the first. */
  last_success_age_sec: number | null;
  last_cycle_result: CycleResult | null;
  instance: string;
}

/** What /health reports about the worker; `BudgetWorker` provides it. */
export interface HealthSource {
  readonly mode: Mode;
  readonly role: 'leader' | 'standby';
  readonly lastSuccessAtMs: number | undefined;
  readonly lastCycle: { result: CycleResult } | undefined;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; `port` of the returned handle says which. */
  port: number;
  registry: Registry;
  redis: RedisClient;
  worker: HealthSource;
  instanceId: string;
  /** Wall clock in epoch ms, the same as the worker's (default `Date.now`). */
  now?: () => number;
  redisPingTimeoutMs?: number;
  logger?: Logger;
}

export interface HttpServerHandle {
  readonly server: Server;
  readonly port: number;
  /** Stops accepting connections and closes idle ones; resolves when the server is closed. */
  close(): Promise<void>;
}

/** Whether Redis answers PING within `timeoutMs`. */
async function redisAnswers(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([client.ping().then((reply) => reply === 'PONG', () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The worker's HTTP endpoints on HOST:PORT: `GET /health` (200 while Redis answers, 503 when it does
 * not) and `GET /metrics` (the worker's registry in the Prometheus text format). Everything else is
 * 404. Node's own http module; no framework.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const now = options.now ?? (() => Date.now());
  const pingTimeoutMs = options.redisPingTimeoutMs ?? HTTP_SERVER_DEFAULTS.redisPingTimeoutMs;
  const logger = options.logger ?? silentLogger;

  const health = async (): Promise<{ code: number; body: HealthBody }> => {
    const connected = await redisAnswers(options.redis, pingTimeoutMs);
    const lastSuccess = options.worker.lastSuccessAtMs;
    const body: HealthBody = {
      status: connected ? 'healthy' : 'unhealthy',
      service: SERVICE_NAME,
      mode: options.worker.mode,
      redis: connected ? 'connected' : 'disconnected',
      role: options.worker.role,
      last_success_age_sec: lastSuccess === undefined ? null : Math.max(0, Math.round((now() - lastSuccess) / 100) / 10),
      last_cycle_result: options.worker.lastCycle?.result ?? null,
      instance: options.instanceId,
    };
    return { code: connected ? 200 : 503, body };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/health') {
      const { code, body } = await health();
      send(res, code, 'application/json; charset=utf-8', JSON.stringify(body));
    } else if (req.method === 'GET' && path === '/metrics') {
      send(res, 200, options.registry.contentType, await options.registry.metrics());
    } else {
      send(res, 404, 'application/json; charset=utf-8', JSON.stringify({ error: 'not found' }));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error, url: req.url }, 'http request failed');
      if (!res.headersSent) send(res, 500, 'application/json; charset=utf-8', JSON.stringify({ error: 'internal error' }));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.writeHead(code, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}
