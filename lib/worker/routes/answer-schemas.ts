import { z } from 'zod';
import { BudgetHash } from '../../../types/budget-hash';
import { ErrorBody } from '../http-error';

/**
 * An answer's schema for a route's `response`, with the description of the answer (the
 * `x-response-description` @fastify/swagger takes for it) and an example (which the OpenAPI
 * document shows beside the schema and a test checks against it).
 */
export function answer<T extends z.ZodType>(schema: T, description: string, example?: z.output<T>): T {
  return schema.meta({ 'x-response-description': description, ...(example === undefined ? {} : { examples: [example] }) });
}

/** A refusal, as the server's error handler renders an `HttpError`. */
export const refusal = (description: string, example: ErrorBody): typeof ErrorBody => answer(ErrorBody, description, example);

export const UNAUTHORIZED = refusal('P28_API_TOKEN is set and the request has no valid bearer token.', {
  error: 'unauthorized',
  message: 'a valid Authorization: Bearer token is required',
});
export const BAD_REQUEST = refusal('Malformed JSON or a query parameter out of range.', {
  error: 'bad_request',
  message: 'Body is not valid JSON but content-type is set to \'application/json\'',
});
export const UNPROCESSABLE = refusal(
  'A query parameter missing, not a finite number (0x10, 0b11, blanks, nan refused) or out of range; FastAPI\'s detail shape beside error and message.',
  {
    error: 'unprocessable_entity',
    message: 'query parameter position_notional: Input should be a valid finite number',
    detail: [{ type: 'float_parsing', loc: ['query', 'position_notional'], msg: 'Input should be a valid finite number', input: '0x10' }],
  },
);
export const TOO_LARGE = refusal('Body over 64 KiB.', { error: 'payload_too_large', message: 'Request body is too large' });
export const REDIS_DOWN = refusal('Redis could not be read.', { error: 'redis_unavailable' });

/** A field of a hash as stored: the string it is on the wire, before the parse to a number. */
function storedField(field: z.ZodType): z.ZodType {
  if (field instanceof z.ZodOptional) return storedField(field.unwrap() as z.ZodType).optional();
  if (field instanceof z.ZodPipe && field.out instanceof z.ZodTransform) return field.in as z.ZodType;
  return field;
}

/**
 * `quantum:portfolio:budget:<SYMBOL>` as stored and served: every field the string it is in Redis,
 * held to the contract's fields (`BudgetHash`); fields outside the contract may be there too.
 */
export const StoredBudgetHash = z
  .looseObject(Object.fromEntries(Object.entries(BudgetHash.shape).map(([name, field]) => [name, storedField(field)])))
  .describe('quantum:portfolio:budget:<SYMBOL> as stored in Redis: every field a string.');

/** The guide's worked example (BTCUSDT, 0.5 @ 100000 against a budget of 1348), as stored. */
export const GUIDE_HASH_EXAMPLE = {
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
