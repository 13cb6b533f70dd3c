import { z } from 'zod';
import { readBudgetHash } from '../../../types/budget-hash';
import { MODES, type Mode } from '../../../types/mode';
import { FAIL_OPEN_REASONS, type FailOpenReason } from '../../../types/permit';
import { normalizeSymbol } from '../../../types/symbol';
import { budgetFreshness } from '../../../plugin/budget-freshness';
import { TOO_LARGE, UNAUTHORIZED, UNPROCESSABLE, answer } from './answer-schemas';
import type { WorkerRoute } from './route-context';
import { ignoreBodies, queryFloat, queryText, refuseInvalidQuery } from './upstream-query';

const CheckQuery = z.object({
  symbol: queryText().meta({ description: 'Matched case-insensitively; a name that is no symbol gets a fail-open invalid_request.', examples: ['BTCUSDT'] }),
  position_notional: queryFloat({ min: 0, example: 50000 }),
});

/** The upstream service's `/budget/check` answer. */
const BudgetCheck = z
  .object({
    violation: z.boolean(),
    budget_usd: z.number().nullable(),
    over_budget: z.number().min(0),
    mode: z.enum(MODES),
    enforce: z.boolean(),
    reason: z.enum(FAIL_OPEN_REASONS).optional(),
  })
  .describe(
    'The upstream service\'s answer: is position_notional over the symbol\'s budget. Fails open (violation false) with a reason when the budget cannot be read or trusted.',
  );
type BudgetCheck = z.infer<typeof BudgetCheck>;

/** `POST /budget/check`: whether a position notional is over the symbol's budget, as upstream judged it. */
export const budgetCheckRoute: WorkerRoute = async (app, { redis, keys, now, freshness, fallbackMode }) => {
  ignoreBodies(app);
  app.post(
    '/budget/check',
    {
      schema: {
        operationId: 'checkBudget',
        summary:
          'Whether a position notional is over the symbol\'s budget (the upstream service\'s check). Any request body is ignored, as upstream did; the symbol is matched case-insensitively.',
        querystring: CheckQuery,
        response: {
          200: answer(BudgetCheck, 'The check; fails open with a reason.', { violation: true, budget_usd: 1348, over_budget: 48652, mode: 'enforce', enforce: true }),
          401: UNAUTHORIZED,
          413: TOO_LARGE,
          422: UNPROCESSABLE,
        },
      },
      attachValidation: true,
    },
    async (request): Promise<BudgetCheck> => {
      refuseInvalidQuery(request);
      const failOpen = (reason: FailOpenReason, mode: Mode = fallbackMode()): BudgetCheck => ({
        violation: false,
        budget_usd: null,
        over_budget: 0,
        mode,
        enforce: mode === 'enforce',
        reason,
      });
      const symbol = normalizeSymbol(request.query.symbol);
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
      if (budgetFreshness(budget.timestamp, now(), freshness) !== 'fresh') return { ...failOpen('stale_budget_data', budget.mode), budget_usd: budget.budget_usd };
      const overBudget = Math.max(0, request.query.position_notional - budget.budget_usd);
      return { violation: overBudget > 0, budget_usd: budget.budget_usd, over_budget: overBudget, mode: budget.mode, enforce: budget.mode === 'enforce' };
    },
  );
};
