import type { RedisClient } from './client';
import { execBatch, command } from './command-batch';
import type { RedisKeys } from './keys';
import { scanKeys } from './key-scanner';
import { BUDGET_HASH_FIELDS, budgetFieldsFromValues } from '../../types/budget-hash';

/** One budget hash as stored: its symbol and its fields, every one a string. */
export interface ListedBudget {
  symbol: string;
  fields: Record<string, string>;
}

/** SCAN COUNT hint: one call covers a universe of a few thousand symbols. */
const SCAN_COUNT = 1000;

export const BUDGET_LISTING_DEFAULTS = Object.freeze({
  /** Hashes per page when the caller gives no limit. */
  limit: 500,
  /** The largest page a caller may ask for. */
  maxLimit: 5000,
});

export interface BudgetPageRequest {
  /** The `nextCursor` of the previous page; absent for the first page. */
  cursor?: string;
  /** Hashes per page, 1..`maxLimit` (default `BUDGET_LISTING_DEFAULTS.limit`). */
  limit?: number;
  /** Only hashes whose position is over budget. */
  over?: boolean;
}

export interface BudgetPage {
  budgets: ListedBudget[];
  /** Where the next page starts; null on the last page. */
  nextCursor: string | null;
}

/**
 * One page of budget hashes, sorted by symbol, starting after `cursor` (the last symbol of the
 * previous page; symbols are the cursor, so a page is stable while hashes come and go).
 *
 * Memory stays bounded whatever the book or the hashes hold: the keys are found with SCAN (never
 * KEYS; only the symbol names are held, one short string each, capped by the universe), and only
 * the page's hashes are read, by HMGET of the known fields, so a hash with extra fields costs
 * nothing. With `over`, hashes are read a page at a time until `limit` match. A hash that expired
 * between SCAN and read, or a key that is not a hash, is left out. Rejects when Redis cannot be
 * asked, so a dead connection never reads as "no budgets".
 */
export async function listBudgetPage(client: RedisClient, keys: RedisKeys, request: BudgetPageRequest = {}): Promise<BudgetPage> {
  const limit = request.limit ?? BUDGET_LISTING_DEFAULTS.limit;
  const { keys: found } = await scanKeys(client, keys.budgetPattern, SCAN_COUNT);
  const symbols: string[] = [];
  for (const key of found) {
    const symbol = keys.symbolOfBudget(key);
    if (symbol !== undefined && (request.cursor === undefined || symbol > request.cursor)) symbols.push(symbol);
  }
  symbols.sort();
  const budgets: ListedBudget[] = [];
  let at = 0;
  while (at < symbols.length && budgets.length < limit) {
    const batch = symbols.slice(at, at + limit);
    const outcomes = await execBatch(client, batch.map((symbol) => command('hmget', keys.budget(symbol), ...BUDGET_HASH_FIELDS)));
    let taken = 0;
    for (let i = 0; i < batch.length && budgets.length < limit; i++) {
      taken = i + 1;
      const outcome = outcomes[i]!;
      if (outcome.error !== null) continue;
      const fields = budgetFieldsFromValues(outcome.value as (string | null)[]);
      if (Object.keys(fields).length === 0 || (request.over && !isOverBudget(fields))) continue;
      budgets.push({ symbol: batch[i]!, fields });
    }
    at += taken;
  }
  return { budgets, nextCursor: at < symbols.length ? symbols[at - 1]! : null };
}

/**
 * Every budget hash in Redis, sorted by symbol, read page by page (`listBudgetPage`). The result
 * grows with the book: the HTTP API and the CLI page instead.
 */
export async function listBudgets(client: RedisClient, keys: RedisKeys): Promise<ListedBudget[]> {
  const listed: ListedBudget[] = [];
  let cursor: string | undefined;
  do {
    const page = await listBudgetPage(client, keys, { cursor, limit: BUDGET_LISTING_DEFAULTS.maxLimit });
    listed.push(...page.budgets);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return listed;
}

/** Whether a stored budget hash says its position is over budget (`over_budget_usd` > 0). */
export function isOverBudget(fields: Readonly<Record<string, string>>): boolean {
  return Number(fields.over_budget_usd) > 0;
}
