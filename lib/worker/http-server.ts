import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { RedisClient } from '../redis/client';
import { silentLogger, type Logger } from '../logger';
import { evaluateHealth, type HealthAnswer, type WorkerHealthFacts } from './health';


export const HTTP_SERVER_DEFAULTS = Object.freeze({
  /** How long /health waits for Redis to answer PING before it reports it disconnected. */
  redisPingTimeoutMs: 500,
});

/** What /health reports about the worker; `BudgetWorker` provides it. */
export interface HealthSource {
  readonly healthFacts: WorkerHealthFacts;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; `port` of the returned handle says which. */
  port: number;
  registry: Registry;
  redis: RedisClient;
  worker: HealthSource;
  instanceId: string;
  /** HEALTH_MAX_BUDGET_AGE_SEC. */
  maxBudgetAgeSec: number;
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
 * The worker's HTTP endpoints on HOST:PORT: `GET /health` (answered by `evaluateHealth`) and
 * `GET /metrics` (the worker's registry in the Prometheus text format). Everything else is 404.
 * Node's own http module; no framework.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const now = options.now ?? (() => Date.now());
  const pingTimeoutMs = options.redisPingTimeoutMs ?? HTTP_SERVER_DEFAULTS.redisPingTimeoutMs;
  const logger = options.logger ?? silentLogger;

  const health = async (): Promise<HealthAnswer> =>
    evaluateHealth({
      worker: options.worker.healthFacts,
      redisConnected: await redisAnswers(options.redis, pingTimeoutMs),
      maxBudgetAgeSec: options.maxBudgetAgeSec,
      nowMs: now(),
      instanceId: options.instanceId,
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/health') {
      const { statusCode, body } = await health();
      send(res, statusCode, 'application/json; charset=utf-8', JSON.stringify(body));
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
