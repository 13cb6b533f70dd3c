import { encodeBudgetHash, type BudgetHash } from '../../types/budget-hash';
import type { PermitRequest } from '../../types/permit';
import { DEFAULT_DECISION_POLICY } from '../../plugin/gate-options';
import { budgetFixture } from './budget-fixture';

/** The policy of the gate's defaults. */
export const DEFAULT_POLICY = DEFAULT_DECISION_POLICY;

/**
 * A fresh budget record for ETHUSDT: budget 1348 USD (guide Test 1), long 1 ETH at 1000, so
 * 1000 USD of notional and 348 USD of room (a BUY of 0.3 fits, 0.4 does not).
 */
export function budgetRecord(overrides: Partial<BudgetHash> = {}, nowMs = Date.now()): BudgetHash {
  const { last_violation_ts: _none, ...withinBudget } = budgetFixture({
    symbol: 'ETHUSDT',
    mode: 'enforce',
    timestamp: Math.floor(nowMs / 1000),
    position_amt: 1,
    position_notional_usd: 1000,
    over_budget_usd: 0,
    position_price: 1000,
  });
  return { ...withinBudget, ...overrides };
}

/** The same record as the string fields the worker writes. */
export function budgetFields(overrides: Partial<BudgetHash> = {}, nowMs = Date.now()): Record<string, string> {
  return encodeBudgetHash(budgetRecord(overrides, nowMs));
}

/**
 * A budget hash as the upstream Python service wrote it: its ten fields, as `str(float)` renders
 * them, and no position fields (budget 1348, guide Test 1).
 */
export function upstreamBudgetFields(symbol: string, timestampSec: number, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    symbol,
    budget_usd: '1348.0',
    stress_factor: '0.326',
    equity_usd: '100000.0',
    portfolio_heat: '0.65',
    cluster_stress: '0.0',
    vol_regime: '0.33',
    mode: 'enforce',
    timestamp: String(timestampSec),
    base_risk_pct: '0.02',
    ...overrides,
  };
}

let planCounter = 0;

/** An opening BUY of 0.1 ETHUSDT unless overridden. */
export function plan(overrides: Partial<PermitRequest> = {}): PermitRequest {
  planCounter += 1;
  return { planId: `plan-${planCounter}`, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: 0.1, ...overrides };
}
