import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readBudgetHash } from '../../types/budget-hash';
import type { Mode } from '../../types/mode';
import type { FailOpenReason } from '../../types/permit';
import { normalizeSymbol } from '../../types/symbol';
import { parseDecimal } from '../../types/wire-number';
import { budgetFreshness } from '../../plugin/budget-freshness';
import type { DecisionPolicy } from '../../plugin/gate-options';
import type { RedisClient } from '../redis/client';
import { splitReservations } from '../redis/reservations';
import type { RedisKeys } from '../redis/keys';
import type { Logger } from '../logger';
import { HttpError } from './http-error';

/** Registers a route and remembers its path and methods (for 405 answers and HEAD). */
export type RouteAdder = (
  instance: FastifyInstance,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
) => void;

export interface UpstreamRoutesOptions {
  redis: RedisClient;
  keys: RedisKeys;
  /** The mode a fail-open answer names when no budget hash says one (the worker's effective mode). */
  fallbackMode: () => Mode;
  /** `POST /budget/check` judges freshness by the gate's one rule, with these bounds. */
  freshness: Pick<DecisionPolicy, 'staleAfterMs' | 'maxClockSkewMs'>;
  testMode: boolean;
  /** TTL of the state `POST /test/inject_portfolio_state` writes, as upstream (120 s). */
  injectedStateTtlSec: number;
  now: () => number;
  logger: Logger;
}

/** The upstream service's `/budget/check` answer. */
export interface BudgetCheckBody {
  violation: boolean;
  budget_usd: number | null;
  over_budget: number;
  mode: Mode;
  enforce: boolean;
  reason?: FailOpenReason;
}

/**
 * FastAPI's 422 for a query parameter that is missing or not a number, in its `detail` shape (so a
 * caller that reads `detail` still can), with this service's `error` and `message` beside it.
 */
function unprocessable(name: string, msg: string, type: string, input?: unknown): HttpError {
  const item: { type: string; loc: string[]; msg: string; input?: unknown } = { type, loc: ['query', name], msg };
  if (input !== undefined) item.input = input;
  return new HttpError(422, { error: 'unprocessable_entity', message: `query parameter ${name}: ${msg}`, detail: [item] });
}

/**
 * A query value as a finite number, read as upstream's float parameters read it: surrounding blanks
 * allowed, `0x10`, `0b11`, an empty or blank value and trailing garbage refused; unlike upstream,
 * `nan` and `inf` are refused too (422). Absent and optional: undefined.
 */
export function queryNumber(query: Record<string, unknown>, name: string, options: { required: boolean; min?: number }): number | undefined {
  const raw = query[name];
  if (raw === undefined) {
    if (options.required) throw unprocessable(name, 'Field required', 'missing');
    return undefined;
  }
  const value = typeof raw === 'string' ? parseDecimal(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw unprocessable(name, 'Input should be a valid finite number', 'float_parsing', raw);
  if (options.min !== undefined && value < options.min) throw unprocessable(name, `Input should be greater than or equal to ${options.min}`, 'greater_than_equal', raw);
  return value;
}

/**
 * The endpoints of the upstream Python service, answering as it did for what its callers send. They
 * take no body: as FastAPI did for them, any body with any content type is ignored, so `curl -X
 * POST`, `curl -d ''` and clients that always send `content-type: application/json` all get their
 * answer instead of a 400 or 415. Symbols are matched case-insensitively.
 */
export function registerUpstreamRoutes(app: FastifyInstance, route: RouteAdder, options: UpstreamRoutesOptions): void {
  const { keys, redis } = options;
  void app.register(async (upstream) => {
    upstream.removeAllContentTypeParsers();
    upstream.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

    route(upstream, 'GET', '/budget/:symbol', async (request, reply) => {
      const symbol = normalizeSymbol((request.params as { symbol: string }).symbol);
      // A name that is no symbol has no budget, as upstream answered for any key it did not find.
      if (symbol === undefined) return reply.code(404).send({ error: 'no_budget_data' });
      const fields = await fromRedis(() => redis.hgetall(keys.budget(symbol)));
      if (Object.keys(fields).length === 0) return reply.code(404).send({ error: 'no_budget_data' });
      // The hash as the upstream service served it: the reservations of plans in flight are not part of it.
      return splitReservations(fields, options.now()).fields;
    });

    route(upstream, 'POST', '/budget/check', async (request): Promise<BudgetCheckBody> => {
      const query = request.query as Record<string, unknown>;
      if (query.symbol === undefined) throw unprocessable('symbol', 'Field required', 'missing');
      const notional = queryNumber(query, 'position_notional', { required: true, min: 0 }) as number;
      const failOpen = (reason: FailOpenReason, mode: Mode = options.fallbackMode()): BudgetCheckBody => ({
        violation: false,
        budget_usd: null,
        over_budget: 0,
        mode,
        enforce: mode === 'enforce',
        reason,
      });
      const symbol = normalizeSymbol(query.symbol);
      if (symbol === undefined) return failOpen('invalid_request');
      let fields: Record<string, string>;
      try {
        fields = await redis.hgetall(keys.budget(symbol));
      } catch {
        return failOpen('redis_unavailable');
      }
      if (Object.keys(fields).length === 0) return failOpen('no_budget_data');
      // A hash in the upstream service's 10-field shape (no position fields) is judged too: the
      // caller's notional against the budget is all this endpoint ever compared.
      const budget = readBudgetHash(fields);
      if (budget === undefined || budget.symbol !== symbol) return failOpen('invalid_budget_data');
      if (budgetFreshness(budget.timestamp, options.now(), options.freshness) !== 'fresh') return { ...failOpen('stale_budget_data', budget.mode), budget_usd: budget.budget_usd };
      const overBudget = Math.max(0, notional - budget.budget_usd);
      return { violation: overBudget > 0, budget_usd: budget.budget_usd, over_budget: overBudget, mode: budget.mode, enforce: budget.mode === 'enforce' };
    });

    route(upstream, 'POST', '/test/inject_portfolio_state', async (request) => {
      if (!options.testMode) throw new HttpError(403, { error: 'forbidden', message: 'test mode not enabled (P28_TEST_MODE=0)' });
      const query = request.query as Record<string, unknown>;
      const equityUsd = queryNumber(query, 'equity_usd', { required: true, min: 0 }) as number;
      const drawdown = queryNumber(query, 'drawdown', { required: false }) ?? 0;
      const injected = { equity_usd: String(equityUsd), drawdown: String(drawdown), timestamp: String(Math.floor(options.now() / 1000)) };
      const ttlSec = options.injectedStateTtlSec;
      await fromRedis(() => redis.multi().hset(keys.portfolioState, injected).expire(keys.portfolioState, ttlSec).exec());
      options.logger.info({ equity_usd: equityUsd, drawdown }, 'test: portfolio state injected');
      return { success: true, injected, message: `Portfolio state injected (TTL ${ttlSec}s)` };
    });
  });
}

/** Runs a Redis read for a route, turning a connection failure into a 503 without its details. */
export async function fromRedis<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw new HttpError(503, { error: 'redis_unavailable', message: error instanceof Error ? error.message : String(error) });
  }
}
