import { z } from 'zod';
import { normalizeSymbol } from '../../../types/symbol';
import { splitReservations } from '../../redis/reservations';
import { fromRedis } from '../http-error';
import { GUIDE_HASH_EXAMPLE, REDIS_DOWN, UNAUTHORIZED, StoredBudgetHash, answer, refusal } from './answer-schemas';
import type { WorkerRoute } from './route-context';
import { ignoreBodies } from './upstream-query';

const NO_BUDGET = { error: 'no_budget_data' };

/** `GET /budget/{symbol}`: one budget hash as the upstream service served it. */
export const budgetRoute: WorkerRoute = async (app, { redis, keys, now }) => {
  ignoreBodies(app);
  app.get(
    '/budget/:symbol',
    {
      schema: {
        operationId: 'getBudget',
        summary: 'One budget hash, as the upstream service served it. The symbol is matched case-insensitively.',
        params: z.object({ symbol: z.string().meta({ description: 'Matched case-insensitively; a name that is no symbol has no budget (404).', examples: ['BTCUSDT'] }) }),
        response: {
          200: answer(StoredBudgetHash, 'The hash as stored.', GUIDE_HASH_EXAMPLE),
          401: UNAUTHORIZED,
          404: refusal('No budget hash for the symbol (or a name that is no symbol).', NO_BUDGET),
          503: REDIS_DOWN,
        },
      },
    },
    async (request, reply) => {
      const symbol = normalizeSymbol(request.params.symbol);
      // A name that is no symbol has no budget, as upstream answered for any key it did not find.
      if (symbol === undefined) return reply.code(404).send(NO_BUDGET);
      const fields = await fromRedis(() => redis.hgetall(keys.budget(symbol)));
      if (Object.keys(fields).length === 0) return reply.code(404).send(NO_BUDGET);
      // The hash as the upstream service served it: the reservations of plans in flight are not part of it.
      return splitReservations(fields, now()).fields;
    },
  );
};
