import type { BudgetHash } from '../types/budget-hash';

/**
 * The one fixture of a budget hash: what the worker writes for the guide's Test 1 (equity 100000, heat 0.65, vol NORMAL,
 * BTCUSDT 0.5 @ 100000): budget 1348, 48652 over it.
 */
export function budgetFixture(overrides: Partial<BudgetHash> = {}): BudgetHash {
  return {
    symbol: 'BTCUSDT',
    budget_usd: 1348,
    stress_factor: 0.326,
    equity_usd: 100000,
    portfolio_heat: 0.65,
    cluster_stress: 0,
    vol_regime: 0.33,
    mode: 'shadow',
    timestamp: 1764000000,
    base_risk_pct: 0.02,
    position_amt: 0.5,
    position_notional_usd: 50000,
    over_budget_usd: 48652,
    last_violation_ts: 1764000000,
    position_price: 100000,
    ...overrides,
  };
}
