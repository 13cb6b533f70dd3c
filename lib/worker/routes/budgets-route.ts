import { z } from 'zod';
import { SYMBOL_PATTERN } from '../../../types/symbol';
import { BUDGET_LISTING_DEFAULTS, listBudgetPage } from '../../redis/budget-listing';
import { splitReservations } from '../../redis/reservations';
import { ListingLimiter } from '../budget-paging';
import { HttpError, fromRedis } from '../http-error';
import { BAD_REQUEST, GUIDE_HASH_EXAMPLE, REDIS_DOWN, UNAUTHORIZED, StoredBudgetHash, answer, refusal } from './answer-schemas';
import type { WorkerRoute } from './route-context';

const { limit: DEFAULT_LIMIT, maxLimit: MAX_LIMIT } = BUDGET_LISTING_DEFAULTS;

/** An empty query value counts as absent. */
const absentIfEmpty = (value: unknown): unknown => (value === '' ? undefined : value);
const wholeNumber = (value: unknown): unknown => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);

const PageQuery = z.object({
  over: z.enum(['true', 'false'], { error: 'query parameter over must be true or false' }).optional().describe('true: only symbols whose position is over budget.'),
  cursor: z
    .preprocess(absentIfEmpty, z.string({ error: 'query parameter cursor must be the next_cursor of a previous page' }).regex(SYMBOL_PATTERN).optional())
    .describe('The next_cursor of the previous page (a symbol: the page starts after it).'),
  limit: z
    .preprocess(
      (value) => wholeNumber(absentIfEmpty(value)),
      z.number({ error: `query parameter limit must be a whole number in 1..${MAX_LIMIT}` }).int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
    )
    .describe('Hashes per page.'),
});

const BudgetList = z.object({
  count: z.number().int().min(0).describe('Hashes on this page.'),
  budgets: z.array(
    StoredBudgetHash.extend({ reservedUsd: z.number().min(0) }).describe(
      'A budget hash as stored, without its reservations field, plus reservedUsd: the USD its live reservations hold.',
    ),
  ),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});

/** `GET /v1/budgets`: the budget hashes a page at a time, at most a few listings at once. */
export const budgetsRoute: WorkerRoute = async (app, { redis, keys, now }) => {
  const listings = new ListingLimiter((body) => new HttpError(429, body));
  app.get(
    '/v1/budgets',
    {
      schema: {
        operationId: 'listBudgets',
        summary: 'The budget hashes, sorted by symbol, a page at a time.',
        description:
          'Pages through every budget hash: follow next_cursor until it is null. Memory and Redis time per request stay bounded whatever the book (at most limit hashes are read, by HMGET of the known fields). At most two listings are served at once; more get 429 with Retry-After.',
        querystring: PageQuery,
        response: {
          200: answer(BudgetList, 'One page of budget hashes.', { count: 1, budgets: [{ ...GUIDE_HASH_EXAMPLE, reservedUsd: 0 }], next_cursor: null }),
          400: BAD_REQUEST,
          401: UNAUTHORIZED,
          429: refusal('Too many listings at once; retry after the Retry-After header.', {
            error: 'too_many_requests',
            message: 'at most 2 budget listings at once; retry in a second',
          }),
          503: REDIS_DOWN,
        },
      },
    },
    async (request) => {
      const { over, cursor, limit } = request.query;
      const listed = await listings.run(() => fromRedis(() => listBudgetPage(redis, keys, { cursor, limit, over: over === 'true' })));
      const nowMs = now();
      const budgets = listed.budgets.map((b) => {
        const { fields, reservedUsd } = splitReservations(b.fields, nowMs);
        return { ...fields, reservedUsd };
      });
      return { count: budgets.length, budgets, next_cursor: listed.nextCursor };
    },
  );
};
