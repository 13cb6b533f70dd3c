import { InvalidArgumentError } from 'commander';
import { BUDGET_LISTING_DEFAULTS, listBudgetPage, type ListedBudget } from '../redis/budget-listing';
import { RedisKeys } from '../redis/keys';
import { table, usd } from './text-table';
import { withRedis } from './with-redis';

/** Column widths that hold the usual symbols and amounts, so that the pages of one table line up. */
const BUDGET_TABLE_WIDTHS = [14, 12, 14, 15, 8, 7, 6];

/**
 * The `budgets` table (or one page of it, without the header): one row per budget hash, its age
 * from its `timestamp`. POSITION says whether
 * the position is known (`ok`) or not (`stale`, `unknown`, `invalid`, or `none` for a hash without
 * position fields, as the upstream service wrote them); an unknown position shows no notional.
 */
export function budgetTable(budgets: readonly ListedBudget[], nowMs: number, withHeader = true): string {
  const rows = budgets.map(({ symbol, fields }) => {
    const ts = Number(fields.timestamp);
    const age = Number.isFinite(ts) ? `${Math.max(0, Math.round(nowMs / 1000 - ts))}s` : '-';
    const position = fields.position_amt === undefined ? 'none' : (fields.position_status ?? 'ok');
    const known = position === 'ok';
    return [symbol, usd(fields.budget_usd), known ? usd(fields.position_notional_usd) : '-', known ? usd(fields.over_budget_usd) : '-', position, fields.mode ?? '-', age];
  });
  return table(['SYMBOL', 'BUDGET_USD', 'NOTIONAL_USD', 'OVER_BUDGET_USD', 'POSITION', 'MODE', 'AGE'], rows, { minWidths: BUDGET_TABLE_WIDTHS, withHeader });
}

/** `--limit` of `budgets`: hashes per page. */
export function pageLimit(raw: string): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < 1 || value > BUDGET_LISTING_DEFAULTS.maxLimit) throw new InvalidArgumentError(`expected a whole number in 1..${BUDGET_LISTING_DEFAULTS.maxLimit}`);
  return value;
}

/**
 * `p28-worker budgets`: prints every budget hash (or only the over-budget ones), a page of `--limit`
 * (default 500) at a time as it is read, so memory stays bounded whatever the book; reads only.
 */
export async function budgetsCommand(options: { over?: boolean; limit?: number }): Promise<void> {
  await withRedis(async (client, config) => {
    const keys = new RedisKeys(config.keyPrefix);
    let cursor: string | undefined;
    let shown = 0;
    do {
      const page = await listBudgetPage(client, keys, { cursor, limit: options.limit, over: options.over });
      if (page.budgets.length > 0) process.stdout.write(budgetTable(page.budgets, Date.now(), shown === 0));
      shown += page.budgets.length;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    if (shown === 0) process.stdout.write(options.over ? 'no symbol is over budget\n' : 'no budget hashes (is the worker running?)\n');
  });
}
