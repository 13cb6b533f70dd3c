import { z } from 'zod';
import { BudgetHash } from '../../types/budget-hash';
import { MODES } from '../../types/mode';
import { FAIL_OPEN_REASONS, GateReason, PermitRequest } from '../../types/permit';
import { SERVICE_NAME } from '../logger';
import { READINESS_ITEMS } from '../readiness/readiness';

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1) as a plain object. */
type JsonSchema = Record<string, unknown>;

/**
 * The wire schemas shared with the rest of the package, rendered from their zod definitions so the
 * document cannot drift from what the gate and the worker accept. The hash is described as stored:
 * every field a string.
 */
function fromZod(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema, example?: unknown) => ({
  'application/json': example === undefined ? { schema } : { schema, example },
});
const errorResponse = (description: string, example: { error: string; message?: string; detail?: unknown[] }) => ({
  description,
  content: json(ref('Error'), example),
});

const GUIDE_HASH_EXAMPLE = {
  symbol: 'BTCUSDT',
  budget_usd: '1348',
  stress_factor: '0.326',
  equity_usd: '100000',
  portfolio_heat: '0.65',
  cluster_stress: '0',
  vol_regime: '0.33',
  mode: 'enforce',
  timestamp: '1769553243',
  base_risk_pct: '0.02',
  position_amt: '0.5',
  position_notional_usd: '50000',
  over_budget_usd: '48652',
  position_price: '100000',
  last_violation_ts: '1769553243',
};

const numberOrNull = { type: ['number', 'null'] };

const SCHEMAS: Record<string, JsonSchema> = {
  PermitRequest: {
    ...fromZod(PermitRequest),
    description:
      'A trade plan asking for a permit. Sizes are unsigned; side gives the direction. A body that does not fit this schema still gets a 200 with a fail-open invalid_request decision.',
  },
  GateDecision: {
    type: 'object',
    description: 'The budget gate\'s decision, the same value the Node plugin returns from BudgetGate.evaluate.',
    properties: {
      allow: { type: 'boolean' },
      reason: { type: 'string', enum: [...GateReason.options] },
      enforced: { type: 'boolean', description: 'Taken under mode=enforce.' },
      failOpen: { type: 'boolean', description: 'The gate could not judge and let the plan through.' },
      wouldBlock: { type: 'boolean', description: 'The plan breaks the budget, whether or not it was blocked.' },
      mode: { enum: [...MODES, null], description: 'The mode of the budget hash; null when none was read.' },
      detail: { type: 'string' },
      source: { type: 'string', enum: ['redis', 'cache', 'none'], description: 'Where the budget hash came from.' },
      budgetUsd: { type: 'number' },
      positionNotionalUsd: { type: 'number' },
      projectedNotionalUsd: { type: 'number' },
    },
    required: ['allow', 'reason', 'enforced', 'failOpen', 'wouldBlock', 'mode'],
  },
  BudgetHash: {
    ...fromZod(BudgetHash),
    description: 'quantum:portfolio:budget:<SYMBOL> as stored in Redis: every field a string.',
  },
  BudgetList: {
    type: 'object',
    properties: {
      count: { type: 'integer', minimum: 0, description: 'Hashes on this page.' },
      budgets: { type: 'array', items: ref('BudgetHash') },
      next_cursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page.' },
    },
    required: ['count', 'budgets', 'next_cursor'],
  },
  BudgetCheck: {
    type: 'object',
    description:
      'The upstream service\'s answer: is position_notional over the symbol\'s budget. Fails open (violation false) with a reason when the budget cannot be read or trusted.',
    properties: {
      violation: { type: 'boolean' },
      budget_usd: numberOrNull,
      over_budget: { type: 'number', minimum: 0 },
      mode: { type: 'string', enum: [...MODES] },
      enforce: { type: 'boolean' },
      reason: { type: 'string', enum: [...FAIL_OPEN_REASONS] },
    },
    required: ['violation', 'budget_usd', 'over_budget', 'mode', 'enforce'],
  },
  Health: {
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
      service: { const: SERVICE_NAME },
      mode: { type: 'string', enum: [...MODES] },
      mode_source: { type: 'string', enum: ['env', 'override'] },
      redis: { type: 'string', enum: ['connected', 'disconnected'] },
      role: { type: 'string', enum: ['leader', 'standby'] },
      budgets_age_sec: { type: ['number', 'null'], minimum: 0, description: 'Seconds since any replica last wrote budgets (the leader heartbeat); null while none is known.' },
      reason: { type: 'string', description: 'Why the status is not healthy.' },
      invalid_keys: {
        type: 'array',
        items: { type: 'string' },
        description: 'Keys the last cycle skipped (a key of the wrong type, a heartbeat from the future), each with its problem; they cost only their own symbol or feature and do not degrade the status.',
      },
      positions: {
        type: ['object', 'null'],
        description: 'Positions the last leader cycle could not vouch for, by position_status (judged by each plan\'s own notional, never as flat); null on a stand-by.',
        properties: {
          stale: { type: 'integer', minimum: 0 },
          unknown: { type: 'integer', minimum: 0 },
          invalid: { type: 'integer', minimum: 0 },
          feed: { type: 'string', enum: ['complete', 'incomplete'] },
          feed_problem: { type: 'string' },
        },
        required: ['stale', 'unknown', 'invalid', 'feed'],
      },
    },
    required: ['status', 'service', 'mode', 'mode_source', 'redis', 'role', 'budgets_age_sec'],
  },
  InjectedPortfolioState: {
    type: 'object',
    properties: {
      success: { const: true },
      injected: {
        type: 'object',
        properties: { equity_usd: { type: 'string' }, drawdown: { type: 'string' }, timestamp: { type: 'string' } },
        required: ['equity_usd', 'drawdown', 'timestamp'],
      },
      message: { type: 'string' },
    },
    required: ['success', 'injected', 'message'],
  },
  ReadinessReport: {
    type: 'object',
    description: 'The guide\'s pre-activation checklist judged from the window\'s records; ready only when every item passes (docs/decision-log.md).',
    properties: {
      ready: { type: 'boolean' },
      evaluatedAt: { type: 'string', format: 'date-time' },
      window: {
        type: 'object',
        properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' }, seconds: { type: 'number', minimum: 0 } },
        required: ['from', 'to', 'seconds'],
      },
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            id: { type: 'string', enum: [...READINESS_ITEMS] },
            title: { type: 'string' },
            pass: { type: 'boolean' },
            summary: { type: 'string' },
            figures: { type: 'object', additionalProperties: { type: ['number', 'string', 'null'] } },
            thresholds: { type: 'object', additionalProperties: { type: ['number', 'string'] } },
            details: { type: 'array', items: { type: 'string' } },
            listed: { type: 'array', items: { type: 'object', additionalProperties: { type: ['number', 'string'] } } },
          },
          required: ['id', 'title', 'pass', 'summary', 'figures', 'thresholds', 'details', 'listed'],
        },
      },
    },
    required: ['ready', 'evaluatedAt', 'window', 'items'],
  },
  Error: {
    type: 'object',
    properties: {
      error: { type: 'string' },
      message: { type: 'string' },
      detail: {
        type: 'array',
        description: 'On the upstream service\'s endpoints: what was wrong where, in FastAPI\'s shape.',
        items: {
          type: 'object',
          properties: { type: { type: 'string' }, loc: { type: 'array', items: { type: 'string' } }, msg: { type: 'string' }, input: {} },
          required: ['type', 'loc', 'msg'],
        },
      },
    },
    required: ['error'],
  },
};

const unauthorized = errorResponse('P28_API_TOKEN is set and the request has no valid bearer token.', {
  error: 'unauthorized',
  message: 'a valid Authorization: Bearer token is required',
});
const badRequest = errorResponse('Malformed JSON or a query parameter out of range.', {
  error: 'bad_request',
  message: 'Body is not valid JSON but content-type is set to \'application/json\'',
});
const unprocessable = errorResponse('A query parameter missing, not a finite number (0x10, 0b11, blanks, nan refused) or out of range; FastAPI\'s detail shape beside error and message.', {
  error: 'unprocessable_entity',
  message: 'query parameter position_notional: Input should be a valid finite number',
  detail: [{ type: 'float_parsing', loc: ['query', 'position_notional'], msg: 'Input should be a valid finite number', input: '0x10' }],
});
const tooLarge = errorResponse('Body over 64 KiB.', { error: 'payload_too_large', message: 'Request body is too large' });
const redisDown = errorResponse('Redis could not be read.', { error: 'redis_unavailable' });
const secured = [{ bearer: [] }];

/**
 * The OpenAPI 3.1 description of the worker's HTTP API: what the server in `http-server.ts`
 * serves at `/openapi.json`. Tests validate it with an OpenAPI validator, check every example
 * against its schema, and check live answers against the response schemas.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'P2.8 Portfolio Risk Governor',
      version,
      description:
        'Budget decisions for Governors that do not embed the Node gate, the upstream service\'s budget endpoints, health and metrics. When P28_API_TOKEN is set, every operation but /health and /metrics needs Authorization: Bearer <token>. Bodies over 64 KiB get 413, malformed JSON 400, a known path with another method 405; HEAD works wherever GET does.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The value of P28_API_TOKEN.' } },
      schemas: SCHEMAS,
    },
    security: secured,
    paths: {
      '/health': {
        get: {
          operationId: 'getHealth',
          summary: 'Liveness and readiness of the worker.',
          security: [],
          responses: {
            '200': { description: 'Healthy.', content: json(ref('Health')) },
            '503': { description: 'Redis unreachable, or budgets not being written.', content: json(ref('Health')) },
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          summary: 'Prometheus metrics of the worker and of the gate behind /v1/decisions.',
          security: [],
          responses: { '200': { description: 'Prometheus text exposition.', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/v1/decisions': {
        post: {
          operationId: 'decide',
          summary: 'The budget gate\'s decision for one trade plan (the same BudgetGate the Node plugin runs).',
          requestBody: {
            required: true,
            content: json(ref('PermitRequest'), { planId: 'plan-1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.01 }),
          },
          responses: {
            '200': {
              description: 'The decision. Every outcome, a block, an allow or a fail-open, is a 200.',
              content: json(ref('GateDecision'), {
                allow: false,
                reason: 'p28_budget_violation',
                enforced: true,
                failOpen: false,
                wouldBlock: true,
                mode: 'enforce',
                detail: 'projected_over_budget',
                budgetUsd: 1348,
                positionNotionalUsd: 50000,
                projectedNotionalUsd: 51000,
                source: 'redis',
              }),
            },
            '400': badRequest,
            '401': unauthorized,
            '413': tooLarge,
          },
        },
      },
      '/v1/budgets': {
        get: {
          operationId: 'listBudgets',
          summary: 'The budget hashes, sorted by symbol, a page at a time.',
          description:
            'Pages through every budget hash: follow next_cursor until it is null. Memory and Redis time per request stay bounded whatever the book (at most limit hashes are read, by HMGET of the known fields). At most two listings are served at once; more get 429 with Retry-After.',
          parameters: [
            {
              name: 'over',
              in: 'query',
              required: false,
              description: 'true: only symbols whose position is over budget.',
              schema: { type: 'string', enum: ['true', 'false'] },
            },
            {
              name: 'cursor',
              in: 'query',
              required: false,
              description: 'The next_cursor of the previous page (a symbol: the page starts after it).',
              schema: { type: 'string', pattern: '^[A-Z0-9]{1,32}$' },
            },
            {
              name: 'limit',
              in: 'query',
              required: false,
              description: 'Hashes per page.',
              schema: { type: 'integer', minimum: 1, maximum: 5000, default: 500 },
            },
          ],
          responses: {
            '200': { description: 'One page of budget hashes.', content: json(ref('BudgetList'), { count: 1, budgets: [GUIDE_HASH_EXAMPLE], next_cursor: null }) },
            '400': badRequest,
            '429': { description: 'Too many listings at once; retry after the Retry-After header.', content: json(ref('Error'), { error: 'too_many_requests', message: 'at most 2 budget listings at once; retry in a second' }) },
            '401': unauthorized,
            '503': redisDown,
          },
        },
      },
      '/v1/readiness': {
        get: {
          operationId: 'getReadiness',
          summary: 'The pre-activation checklist over a window: each item pass or fail with its figures and threshold (the same report as p28-worker readiness --json).',
          parameters: [
            {
              name: 'window',
              in: 'query',
              required: false,
              description: 'How far back to look: a duration such as 30m, 24h or 7d, between 1m and 30d.',
              schema: { type: 'string', pattern: '^\\d+(\\.\\d+)?[smhd]$', default: '24h' },
            },
          ],
          responses: {
            '200': { description: 'The report; `ready` is true only when every item passes.', content: json(ref('ReadinessReport')) },
            '400': badRequest,
            '401': unauthorized,
            '503': redisDown,
          },
        },
      },
      '/budget/{symbol}': {
        get: {
          operationId: 'getBudget',
          summary: 'One budget hash, as the upstream service served it. The symbol is matched case-insensitively.',
          parameters: [{ name: 'symbol', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9]{1,32}$' } }],
          responses: {
            '200': { description: 'The hash as stored.', content: json(ref('BudgetHash'), GUIDE_HASH_EXAMPLE) },
            '401': unauthorized,
            '404': { description: 'No budget hash for the symbol (or a name that is no symbol).', content: json(ref('Error'), { error: 'no_budget_data' }) },
            '503': redisDown,
          },
        },
      },
      '/budget/check': {
        post: {
          operationId: 'checkBudget',
          summary: 'Whether a position notional is over the symbol\'s budget (the upstream service\'s check). Any request body is ignored, as upstream did; the symbol is matched case-insensitively.',
          parameters: [
            { name: 'symbol', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'position_notional', in: 'query', required: true, schema: { type: 'number', minimum: 0 } },
          ],
          responses: {
            '200': {
              description: 'The check; fails open with a reason.',
              content: json(ref('BudgetCheck'), { violation: true, budget_usd: 1348, over_budget: 48652, mode: 'enforce', enforce: true }),
            },
            '401': unauthorized,
            '413': tooLarge,
            '422': unprocessable,
          },
        },
      },
      '/test/inject_portfolio_state': {
        post: {
          operationId: 'injectPortfolioState',
          summary: 'Test only (P28_TEST_MODE=1): writes quantum:state:portfolio with a 120 s TTL.',
          parameters: [
            { name: 'equity_usd', in: 'query', required: true, schema: { type: 'number', minimum: 0 } },
            { name: 'drawdown', in: 'query', required: false, schema: { type: 'number', default: 0 } },
          ],
          responses: {
            '200': {
              description: 'Written.',
              content: json(ref('InjectedPortfolioState'), {
                success: true,
                injected: { equity_usd: '100000', drawdown: '0', timestamp: '1769553243' },
                message: 'Portfolio state injected (TTL 120s)',
              }),
            },
            '422': unprocessable,
            '401': unauthorized,
            '403': errorResponse('P28_TEST_MODE is not 1.', { error: 'forbidden', message: 'test mode not enabled (P28_TEST_MODE=0)' }),
            '503': redisDown,
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          summary: 'This document.',
          responses: {
            '200': { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } },
            '401': unauthorized,
          },
        },
      },
    },
  };
}
