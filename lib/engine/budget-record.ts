import type { BudgetHash, PositionStatus } from '../../types/budget-hash';
import type { Mode } from '../../types/mode';
import { VIOLATION_EVENT_TYPE, type ViolationEvent } from '../../types/violation-event';
import { BudgetInputError, computeBudget, type BudgetParams } from './compute-budget';

/** One symbol's inputs, parsed and with every fallback applied. */
export interface SymbolInputs {
  symbol: string;
  /** Signed position size; 0 when flat or when the position is `invalid`. */
  positionAmt: number;
  /** Mark price, else entry price, when usable; undefined for a flat position without a price. */
  positionPrice: number | undefined;
  /** |position_amt| * price, rounded to the cent; 0 when the position is `invalid`. */
  notionalUsd: number;
  /** `invalid` when the snapshot's numbers were unusable: the position is unknown, the budget still stands. */
  positionStatus: PositionStatus;
  clusterId: string;
  clusterStress: number;
  volRegime: number;
}

/** One symbol's output of a cycle: its budget hash and, when over budget, the violation to publish. */
export interface BudgetWrite {
  record: BudgetHash;
  violation?: ViolationEvent;
}

export interface BudgetRecordContext {
  equityUsd: number;
  portfolioHeat: number;
  params: BudgetParams;
  /** The mode written for this symbol (canary-aware). */
  mode: Mode;
  /** Epoch seconds of the cycle. */
  timestamp: number;
}

/** What a cycle shares across symbols; the mode is given per symbol (canary-aware). */
export interface BudgetsContext extends Omit<BudgetRecordContext, 'mode'> {
  modeOf(symbol: string): Mode;
}

/** Every symbol's write, and the symbols whose inputs the engine rejected (with why). */
export interface BudgetsComputed {
  writes: BudgetWrite[];
  rejected: { symbol: string; reason: string }[];
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
    position_status: input.positionStatus,
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

/**
 * Every symbol's budget write for one cycle. A symbol whose inputs `computeBudget` rejects is listed
 * in `rejected` instead of producing a NaN budget; any other error is a programming error and throws.
 */
export function computeBudgets(inputs: readonly SymbolInputs[], ctx: BudgetsContext): BudgetsComputed {
  const out: BudgetsComputed = { writes: [], rejected: [] };
  for (const input of inputs) {
    try {
      out.writes.push(buildBudgetWrite(input, { ...ctx, mode: ctx.modeOf(input.symbol) }));
    } catch (error) {
      if (!(error instanceof BudgetInputError)) throw error;
      out.rejected.push({ symbol: input.symbol, reason: `budget not computable: ${error.message}` });
    }
  }
  return out;
}
