import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import type { Mode } from '../../../types/mode';
import type { PermitGate } from '../../../types/permit';
import type { DecisionPolicy } from '../../../plugin/gate-options';
import type { RedisClient } from '../../redis/client';
import type { RedisKeys } from '../../redis/keys';
import type { Logger } from '../../logger';
import type { ReadinessReport } from '../../readiness/readiness';
import type { HealthReport } from '../health';

/**
 * What the routes of the HTTP API are built from. Every route plugin gets all of it and takes what
 * it needs; a route whose collaborator is absent (no gate, no readiness) is not served.
 */
export type RouteContext = {
  /** The worker's client: budget listings and reads, the test injection. */
  redis: RedisClient;
  keys: RedisKeys;
  /** Wall clock in epoch ms, the same as the worker's. */
  now: () => number;
  logger: Logger;
  /** The health evaluation `GET /health` renders. */
  health: () => Promise<HealthReport>;
  /** The registry `GET /metrics` serves. */
  registry: Registry;
  /** The gate `POST /v1/decisions` asks (and whose `release` frees reservations). */
  gate?: PermitGate;
  /** Behind `GET /v1/readiness`: the checklist over a window (ms). */
  readiness?: (windowMs: number) => Promise<ReadinessReport>;
  /** The mode a fail-open answer of `POST /budget/check` names when no budget hash says one. */
  fallbackMode: () => Mode;
  /** `POST /budget/check` judges freshness by the gate's one rule, with these bounds. */
  freshness: Pick<DecisionPolicy, 'staleAfterMs' | 'maxClockSkewMs'>;
  /** Serve `POST /test/inject_portfolio_state` (P28_TEST_MODE=1); 403 otherwise. */
  testMode: boolean;
  /** TTL of the state `POST /test/inject_portfolio_state` writes, as upstream (120 s). */
  injectedStateTtlSec: number;
};

/** A route of the HTTP API: a fastify plugin whose schemas are zod schemas. */
export type WorkerRoute = FastifyPluginAsyncZod<RouteContext>;
