import type { DecisionPolicy } from './gate-options';

/** Whether a budget hash may be judged by its `timestamp`: `fresh`, or the `detail` of a `stale_budget_data` fail-open. */
export type BudgetFreshness = 'fresh' | 'stale' | 'timestamp_in_future';

/**
 * The one freshness rule of a budget hash, for the gate's decisions and the worker's
 * `POST /budget/check` alike: a hash is `stale` when its `timestamp` (epoch s) is more than
 * `staleAfterMs` old, and not trusted either (`timestamp_in_future`) when it lies more than
 * `maxClockSkewMs` ahead. Small clock differences between hosts are tolerated; a hash dated far
 * ahead would stay "fresh" for longer than its writer ever meant, so it is not.
 */
export function budgetFreshness(timestampSec: number, nowMs: number, rule: Pick<DecisionPolicy, 'staleAfterMs' | 'maxClockSkewMs'>): BudgetFreshness {
  const ageMs = nowMs - timestampSec * 1000;
  if (ageMs > rule.staleAfterMs) return 'stale';
  if (-ageMs > rule.maxClockSkewMs) return 'timestamp_in_future';
  return 'fresh';
}
