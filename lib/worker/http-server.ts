import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import { PLAN_ID_MAX, type PermitGate } from '../../types/permit';
import { BUDGET_GATE_DEFAULTS } from '../../plugin/gate-options';
import { CauseLog } from '../cause-log';
import type { RedisClient } from '../redis/client';
import { RedisKeys, type InputFamilies } from '../redis/keys';
import { silentLogger, type Logger } from '../logger';
import type { ReadinessReport } from '../readiness/readiness';
import { evaluateHealth, type HealthReport, type HealthSource } from './health';
import { HttpError } from './http-error';
import { requireBearerToken } from './bearer-auth';
import { answerOtherMethods } from './method-not-allowed';
import { registerOpenApiDocument } from './openapi-document';
import { budgetCheckRoute } from './routes/budget-check-route';
import { budgetRoute } from './routes/budget-route';
import { budgetsRoute } from './routes/budgets-route';
import { decisionsRoute } from './routes/decisions-route';
import { healthRoute } from './routes/health-route';
import { injectStateRoute } from './routes/inject-state-route';
import { metricsRoute } from './routes/metrics-route';
import { openApiRoute } from './routes/openapi-route';
import { readinessRoute } from './routes/readiness-route';
import { releaseRoute } from './routes/release-route';
import type { RouteContext, WorkerRoute } from './routes/route-context';

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

/** The routes of the API, each a plugin in `routes/` carrying its schemas; the order is the document's. */
const ROUTES: readonly WorkerRoute[] = [
  healthRoute,
  metricsRoute,
  decisionsRoute,
  budgetsRoute,
  releaseRoute,
  readinessRoute,
  budgetRoute,
  budgetCheckRoute,
  injectStateRoute,
  openApiRoute,
];

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

/**
 * The fastify application behind `startHttpServer`, hooks registered and routes queued (they load
 * on `ready` or `listen`), not yet listening. Query, path and body parameters are validated by the
 * routes' zod schemas; the OpenAPI document is generated from the same schemas.
 */
export function buildHttpApp(options: HttpServerOptions): FastifyInstance {
  const now = options.now ?? (() => Date.now());
  const logger = options.logger ?? silentLogger;
  const context: RouteContext = {
    redis: options.redis,
    keys: new RedisKeys(options.keyPrefix, options.inputFamilies),
    now,
    logger,
    health:
      options.health ??
      (() =>
        evaluateHealth({
          redis: options.redis,
          worker: options.worker,
          instanceId: options.instanceId,
          maxBudgetAgeSec: options.maxBudgetAgeSec,
          now,
          redisPingTimeoutMs: options.redisPingTimeoutMs ?? HTTP_SERVER_DEFAULTS.redisPingTimeoutMs,
        })),
    registry: options.registry,
    gate: options.gate,
    readiness: options.readiness,
    fallbackMode: () => options.worker.mode,
    freshness: { staleAfterMs: options.staleAfterMs ?? BUDGET_GATE_DEFAULTS.staleAfterMs, maxClockSkewMs: BUDGET_GATE_DEFAULTS.maxClockSkewMs },
    testMode: options.testMode ?? false,
    injectedStateTtlSec: HTTP_SERVER_DEFAULTS.injectedStateTtlSec,
  };

  // fastify's own logger stays off: the service logs through its pino logger, with only the
  // fields below, so that headers (the bearer token) never reach a log line.
  // A path parameter may hold a whole planId (up to 200 characters, more once percent-encoded).
  const app = Fastify({
    logger: false,
    bodyLimit: HTTP_SERVER_DEFAULTS.bodyLimitBytes,
    return503OnClosing: true,
    routerOptions: { maxParamLength: PLAN_ID_MAX * 3 },
    // A parameter the route's schema refuses: 400 with the message of the first one refused.
    schemaErrorFormatter: (errors) => new HttpError(400, { error: 'bad_request', message: errors[0]?.message ?? 'bad request' }),
  });
  app.setValidatorCompiler(validatorCompiler);
  // Answers are sent as the handlers build them; the response schemas document them (and the
  // tests hold live answers to the document).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // Bodies are JSON only: a text/plain body would reach the gate as a string and pass for a
  // malformed request; a 415 tells the caller what is wrong instead.
  app.removeContentTypeParser('text/plain');
  registerOpenApiDocument(app, options.version ?? '0.0.0');

  requireBearerToken(app, options.apiToken);

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

  const registerMethodNotAllowed = answerOtherMethods(app);
  for (const route of ROUTES) void app.register(route, context);
  registerMethodNotAllowed();
  return app;
}
