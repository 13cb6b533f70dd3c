import type { BudgetHash } from '../types/budget-hash';
import type { Mode } from '../types/mode';
import { VIOLATION_EVENT_TYPE } from '../types/violation-event';
import { computeBudget, type BudgetParams } from './budget';
import type { BudgetWrite } from './budget-writer';
import type { SymbolInputs } from './portfolio-reader';

export interface BudgetRecordContext {
  equityUsd: number;
  portfolioHeat: number;
  params: BudgetParams;
  /** The mode written for this symbol (canary-aware). */
  mode: Mode;
  /** Epoch seconds of the cycle. */
  timestamp: number;
}

/**
 * One symbol's budget hash and, when its notional exceeds the budget, the violation to publish.
 * `over_budget_usd` is rounded to the cent like the budget and the notional, so a violation is always
 * at least one cent. Throws `BudgetInputError` (from `computeBudget`) for input outside its range.
 */
export function buildBudgetWrite(input: SymbolInputs, ctx: BudgetRecordContext): BudgetWrite {
  const budget = computeBudget(
    { equityUsd: ctx.equityUsd, portfolioHeat: ctx.portfolioHeat, clusterStress: input.clusterStress, volRegime: input.volRegime },
    ctx.params,
  );
  const overBudgetUsd = Math.max(0, Math.round((input.notionalUsd - budget.budgetUsd) * 100) / 100);
  const record: BudgetHash = {
    symbol: input.symbol,
    budget_usd: budget.budgetUsd,
    stress_factor: budget.stressFactor,
    equity_usd: ctx.equityUsd,
    portfolio_heat: ctx.portfolioHeat,
    cluster_stress: input.clusterStress,
    vol_regime: input.volRegime,
    mode: ctx.mode,
    timestamp: ctx.timestamp,
    base_risk_pct: ctx.params.baseRiskPct,
    position_amt: input.positionAmt,
    position_notional_usd: input.notionalUsd,
    over_budget_usd: overBudgetUsd,
  };
  if (input.positionPrice !== undefined) record.position_price = input.positionPrice;
  if (overBudgetUsd === 0) return { record };
  record.last_violation_ts = ctx.timestamp;
  return {
    record,
    violation: {
      event_type: VIOLATION_EVENT_TYPE,
      symbol: input.symbol,
      position_notional: input.notionalUsd,
      budget_usd: budget.budgetUsd,
      over_budget: overBudgetUsd,
      mode: ctx.mode,
      timestamp: ctx.timestamp,
    },
  };
}
