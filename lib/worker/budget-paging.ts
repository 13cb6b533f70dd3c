import { isValidSymbol } from '../../types/symbol';
import { BUDGET_LISTING_DEFAULTS, type BudgetPageRequest } from '../redis/budget-listing';

export const BUDGET_PAGING_DEFAULTS = Object.freeze({
  /**
   * Listings served at once; more get 429 with Retry-After. Each one SCANs the budget keys and
   * reads a page of hashes: a handful in parallel is plenty for operators and dashboards, and a
   * flood of them must not take the worker's memory or the cycle's Redis time.
   */
  maxConcurrentListings: 2,
});

/** A query parameter of GET /v1/budgets that is not usable: what to answer with 400. */
export class BudgetPageParamError extends Error {
  readonly code = 'BAD_PAGE_PARAM';
  constructor(message: string) {
    super(message);
    this.name = 'BudgetPageParamError';
  }
}

/**
 * `cursor` and `limit` of GET /v1/budgets: the cursor is the `next_cursor` of the previous page
 * (a symbol), the limit a whole number in 1..`maxLimit` (default 500). Throws
 * `BudgetPageParamError` naming the parameter.
 */
export function budgetPageParams(query: Record<string, unknown>): Pick<BudgetPageRequest, 'cursor' | 'limit'> {
  const out: Pick<BudgetPageRequest, 'cursor' | 'limit'> = {};
  const { cursor, limit } = query;
  if (cursor !== undefined && cursor !== '') {
    if (!isValidSymbol(cursor)) throw new BudgetPageParamError('query parameter cursor must be the next_cursor of a previous page');
    out.cursor = cursor;
  }
  if (limit !== undefined && limit !== '') {
    const n = typeof limit === 'string' && /^\d+$/.test(limit) ? Number(limit) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > BUDGET_LISTING_DEFAULTS.maxLimit) {
      throw new BudgetPageParamError(`query parameter limit must be a whole number in 1..${BUDGET_LISTING_DEFAULTS.maxLimit}`);
    }
    out.limit = n;
  }
  return out;
}

/** At most `maxConcurrentListings` listings in flight; the next one is refused with `tooMany`. */
export class ListingLimiter {
  private inFlight = 0;

  constructor(
    private readonly tooMany: (body: { error: string; message: string }) => Error,
    private readonly max: number = BUDGET_PAGING_DEFAULTS.maxConcurrentListings,
  ) {}

  async run<T>(list: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.max) throw this.tooMany({ error: 'too_many_requests', message: `at most ${this.max} budget listings at once; retry in a second` });
    this.inFlight += 1;
    try {
      return await list();
    } finally {
      this.inFlight -= 1;
    }
  }
}
