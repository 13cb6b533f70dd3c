import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { PLAN_ID_MAX, type PermitGate } from '../../types/permit';
import { normalizeSymbol } from '../../types/symbol';
import { BUDGET_GATE_DEFAULTS } from '../../plugin/gate-options';
import { listBudgetPage } from '../redis/budget-listing';
import { splitReservations } from '../redis/reservations';
import { CauseLog } from '../cause-log';
import { BudgetPageParamError, ListingLimiter, budgetPageParams } from './budget-paging';
import type { RedisClient } from '../redis/client';
import { RedisKeys, type InputFamilies } from '../redis/keys';
import { silentLogger, type Logger } from '../logger';
import { evaluateHealth, type HealthReport, type HealthSource } from './health';
import { openApiDocument } from './openapi';
import { HttpError } from './http-error';
import { fromRedis, registerUpstreamRoutes } from './upstream-routes';
import type { ReadinessReport } from '../readiness/readiness';
import { parseWindow } from '../readiness/window';

export const HTTP_SERVER_DEFAULTS = Object.freeze({
  /** How long /health waits for Redis to answer PING before it reports it disconnected. */
  redisPingTimeoutMs: 500,
  /** Largest request body; larger ones get 413 before they are read in full. */
  bodyLimitBytes: 64 * 1024,
  /** TTL of the portfolio state written by `POST /test/inject_portfolio_state`, as upstream. */
  injectedStateTtlSec: 120,
});

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; `port` of the returned handle says which. */
  port: number;
  registry: Registry;
  /** The worker's client: health PING, budget listings and reads, the test injection. */
  redis: RedisClient;
  worker: HealthSource;
  instanceId: string;
  /** HEALTH_MAX_BUDGET_AGE_SEC: /health is degraded when budgets are older. */
  maxBudgetAgeSec: number;
  /**
   * The gate `POST /v1/decisions` asks: the service passes its own `BudgetGate`, so HTTP callers
   * get the decisions, breaker and fail-open behaviour of the Node plugin. Without one the route
   * is not served.
   */
  gate?: PermitGate;
  /** Prefix of the budget keys read (default `quantum`). */
  keyPrefix?: string;
  /** Where the portfolio state lives, for the test injection (default: today's families). */
  inputFamilies?: Partial<InputFamilies>;
  /** When set, every endpoint but /health and /metrics needs `Authorization: Bearer <apiToken>`. */
  apiToken?: string;
  /** Serve `POST /test/inject_portfolio_state` (P28_TEST_MODE=1); 403 otherwise. */
  testMode?: boolean;
  /** The package version, shown in /openapi.json. */
  version?: string;
  /**
   * Health evaluation behind `GET /health` (default `evaluateHealth` over `redis` and `worker`).
   * The route only renders what it returns.
   */
  health?: () => Promise<HealthReport>;
  /** Wall clock in epoch ms, the same as the worker's (default `Date.now`). */
  now?: () => number;
  /** Behind `GET /v1/readiness`: the checklist over a window (ms). Without it the route is not served. */
  readiness?: (windowMs: number) => Promise<ReadinessReport>;
  redisPingTimeoutMs?: number;
  /** `POST /budget/check` judges freshness by the gate's rule (`budgetFreshness`); default the gate's `staleAfterMs`. */
  staleAfterMs?: number;
  logger?: Logger;
}

export interface HttpServerHandle {
  readonly server: Server;
  readonly port: number;
  /** Stops accepting connections and closes idle ones; resolves when the server is closed. */
  close(): Promise<void>;
}


declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the bearer token even when P28_API_TOKEN is set. */
    public?: boolean;
  }
}

/** Methods a known path may be asked with; those it does not serve get 405, not 404. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** A fixed-length digest, so that the token comparison takes the same time whatever its length. */
const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** A bearer-token check in constant time; the token itself is never logged or echoed. */
function tokenCheck(apiToken: string): (header: string | undefined) => boolean {
  const expected = digest(apiToken);
  return (header) => {
    const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
    return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
  };
}

/**
 * The worker's HTTP API on HOST:PORT (fastify): `/health`, `/metrics`, the budget decisions of the
 * service's gate (`POST /v1/decisions`), budget listings, the upstream service's `/budget/*`
 * endpoints, the test injection and `/openapi.json`. Every refusal is a JSON `{error, message}`
 * with a 4xx status; no answer or log line carries the token or a Redis password.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const app = buildHttpApp(options);
  await app.listen({ host: options.host, port: options.port });
  const server = app.server;
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: async () => {
      server.closeIdleConnections();
      await app.close();
    },
  };
}

/** The fastify application behind `startHttpServer`, routes and hooks registered, not yet listening. */
function buildHttpApp(options: HttpServerOptions): FastifyInstance {
  const now = options.now ?? (() => Date.now());
  const logger = options.logger ?? silentLogger;
  const keys = new RedisKeys(options.keyPrefix, options.inputFamilies);
  const freshness = { staleAfterMs: options.staleAfterMs ?? BUDGET_GATE_DEFAULTS.staleAfterMs, maxClockSkewMs: BUDGET_GATE_DEFAULTS.maxClockSkewMs };
  const health =
    options.health ??
    (() =>
      evaluateHealth({
        redis: options.redis,
        worker: options.worker,
        instanceId: options.instanceId,
        maxBudgetAgeSec: options.maxBudgetAgeSec,
        now,
        redisPingTimeoutMs: options.redisPingTimeoutMs ?? HTTP_SERVER_DEFAULTS.redisPingTimeoutMs,
      }));
  const authorized = options.apiToken ? tokenCheck(options.apiToken) : undefined;
  const document = openApiDocument(options.version ?? '0.0.0');

  // fastify's own logger stays off: the service logs through its pino logger, with only the
  // fields below, so that headers (the bearer token) never reach a log line.
  // A path parameter may hold a whole planId (up to 200 characters, more once percent-encoded).
  const app = Fastify({
    logger: false,
    bodyLimit: HTTP_SERVER_DEFAULTS.bodyLimitBytes,
    return503OnClosing: true,
    routerOptions: { maxParamLength: PLAN_ID_MAX * 3 },
  });
  // Bodies are JSON only: a text/plain body would reach the gate as a string and pass for a
  // malformed request; a 415 tells the caller what is wrong instead.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    if (!authorized || request.routeOptions.config?.public) return;
    if (!authorized(request.headers.authorization)) {
      reply.header('www-authenticate', 'Bearer');
      throw new HttpError(401, { error: 'unauthorized', message: 'a valid Authorization: Bearer token is required' });
    }
  });

  const failures = new CauseLog(logger);
  // Only a success of the failing route ends its problem: /health and /metrics answer while
  // Redis is down, and must not make every further failure log again.
  app.addHook('onResponse', async (request, reply) => {
    const failing = failures.state?.cause;
    if (failing === undefined || reply.statusCode >= 500 || !failing.startsWith(`${request.method} ${request.routeOptions.url} `)) return;
    failures.resolved({ method: request.method, path: request.routeOptions.url }, 'http requests succeed again');
  });

  app.setErrorHandler((error: FastifyError | HttpError, request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-store');
    if (error instanceof HttpError) {
      // Once per change of cause (route and error), with a count, not once per failing request.
      if (error.statusCode >= 500) failures.problem(`${request.method} ${request.routeOptions.url} ${error.body.error}`, { method: request.method, path: request.routeOptions.url, error: error.body.error }, 'http request failed');
      if (error.statusCode === 429) reply.header('retry-after', '1');
      // A Redis error message names the server, never its password (ioredis leaves credentials
      // out of its messages), but the client does not need it either.
      const body = error.statusCode >= 500 ? { error: error.body.error } : error.body;
      return reply.code(error.statusCode).send(body);
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      failures.problem(`${request.method} ${request.routeOptions.url} internal_error`, { method: request.method, path: request.routeOptions.url, err: error.message }, 'http request failed', 'error');
      return reply.code(500).send({ error: 'internal_error' });
    }
    const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
    return reply.code(status).send({ error: code, message: error.message });
  });

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not_found' }));

  const served = new Map<string, { methods: Set<string>; isPublic: boolean }>();
  const route = (
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
    isPublic = false,
    instance: FastifyInstance = app,
  ): void => {
    instance.route({ method, url, handler, config: { public: isPublic } });
    const entry = served.get(url) ?? { methods: new Set<string>(), isPublic };
    entry.methods.add(method);
    if (method === 'GET') entry.methods.add('HEAD');
    served.set(url, entry);
  };

  route(
    'GET',
    '/health',
    async (_request, reply) => {
      const { code, body } = await health();
      return reply.code(code).header('cache-control', 'no-store').send(body);
    },
    true,
  );

  route(
    'GET',
    '/metrics',
    async (_request, reply) =>
      reply.header('content-type', options.registry.contentType).header('cache-control', 'no-store').send(await options.registry.metrics()),
    true,
  );

  const gate = options.gate;
  if (gate) {
    // Any JSON value is handed to the gate as is: it answers a body that fails the schema with a
    // fail-open `invalid_request`, exactly as it does for a Node caller.
    route('POST', '/v1/decisions', async (request) => gate.evaluate(request.body as never));
    const release = gate.release?.bind(gate);
    if (release) {
      route('DELETE', '/v1/reservations/:symbol/:planId', async (request) => {
        const params = request.params as { symbol: string; planId: string };
        const symbol = normalizeSymbol(params.symbol);
        if (symbol === undefined) throw new HttpError(400, { error: 'bad_request', message: 'symbol must be 1-32 letters or digits' });
        const planId = params.planId;
        if (typeof planId !== 'string' || planId.length === 0 || planId.length > PLAN_ID_MAX) {
          throw new HttpError(400, { error: 'bad_request', message: `planId must be 1-${PLAN_ID_MAX} characters` });
        }
        return { symbol, planId, released: await release(planId, symbol) };
      });
    }
  }

  const listings = new ListingLimiter((body) => new HttpError(429, body));
  route('GET', '/v1/budgets', async (request) => {
    const { over } = request.query as Record<string, unknown>;
    if (over !== undefined && over !== 'true' && over !== 'false') {
      throw new HttpError(400, { error: 'bad_request', message: 'query parameter over must be true or false' });
    }
    let page: ReturnType<typeof budgetPageParams>;
    try {
      page = budgetPageParams(request.query as Record<string, unknown>);
    } catch (error) {
      if (error instanceof BudgetPageParamError) throw new HttpError(400, { error: 'bad_request', message: error.message });
      throw error;
    }
    const listed = await listings.run(() => fromRedis(() => listBudgetPage(options.redis, keys, { ...page, over: over === 'true' })));
    const nowMs = now();
    const budgets = listed.budgets.map((b) => {
      const { fields, reservedUsd } = splitReservations(b.fields, nowMs);
      return { ...fields, reservedUsd };
    });
    return { count: budgets.length, budgets, next_cursor: listed.nextCursor };
  });

  const readiness = options.readiness;
  if (readiness) {
    route('GET', '/v1/readiness', async (request) => {
      const { window = '24h' } = request.query as Record<string, unknown>;
      let windowMs: number;
      try {
        windowMs = parseWindow(String(window));
      } catch (error) {
        throw new HttpError(400, { error: 'bad_request', message: `query parameter ${(error as Error).message}` });
      }
      return fromRedis(() => readiness(windowMs));
    });
  }

  registerUpstreamRoutes(app, (instance, method, url, handler) => route(method, url, handler, false, instance), {
    redis: options.redis,
    keys,
    fallbackMode: () => options.worker.mode,
    freshness,
    testMode: options.testMode ?? false,
    injectedStateTtlSec: HTTP_SERVER_DEFAULTS.injectedStateTtlSec,
    now,
    logger,
  });

  route('GET', '/openapi.json', async () => document);

  // Registered after the routes (the upstream ones load as a plugin), so every served path is known.
  void app.register(async (instance) => {
    for (const [url, { methods, isPublic }] of served) {
      const others = METHODS.filter((m) => !methods.has(m));
      const allow = [...methods].join(', ');
      instance.route({
        method: others,
        url,
        config: { public: isPublic },
        handler: async (_request, reply) => reply.code(405).header('allow', allow).send({ error: 'method_not_allowed', message: `use ${allow}` }),
      });
    }
  });

  return app;
}
