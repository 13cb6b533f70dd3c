import type { RedisClient } from './client';
import { execBatch, command } from './command-batch';
import type { RedisKeys } from './keys';
import { scanKeys } from './key-scanner';

/** One budget hash as stored: its symbol and its fields, every one a string. */
export interface ListedBudget {
  symbol: string;
  fields: Record<string, string>;
}

/** SCAN COUNT hint: one call covers a universe of a few thousand symbols. */
const SCAN_COUNT = 1000;

/**
 * Every budget hash in Redis, sorted by symbol: SCAN for the keys (never KEYS), then one HGETALL
 * each in a single batch. A hash that expired between the two, or a key that is not a hash, is
 * left out. Rejects when Redis cannot be asked, so a dead connection never reads as "no budgets".
 */
export async function listBudgets(client: RedisClient, keys: RedisKeys): Promise<ListedBudget[]> {
  const { keys: found } = await scanKeys(client, keys.budgetPattern, SCAN_COUNT);
  const symbols = found.flatMap((key) => {
    const symbol = keys.symbolOfBudget(key);
    return symbol === undefined ? [] : [symbol];
  });
  symbols.sort();
  const outcomes = await execBatch(client, symbols.map((symbol) => command('hgetall', keys.budget(symbol))));
  const listed: ListedBudget[] = [];
  outcomes.forEach((outcome, i) => {
    const fields = outcome.value as Record<string, string> | null;
    if (outcome.error === null && fields !== null && Object.keys(fields).length > 0) listed.push({ symbol: symbols[i]!, fields });
  });
  return listed;
}

/** Whether a stored budget hash says its position is over budget (`over_budget_usd` > 0). */
export function isOverBudget(fields: Readonly<Record<string, string>>): boolean {
  return Number(fields.over_budget_usd) > 0;
}
