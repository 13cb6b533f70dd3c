import { BudgetInputError, computeBudget, type BudgetParams } from '../engine/compute-budget';

/**
 * The budget and stress the configured formula gives from a hash's own inputs, or why it cannot:
 * the accuracy check and the would-block explanation both rest on it.
 */
export function recomputeFromHash(hash: Readonly<Record<string, string>>, params: BudgetParams): { budgetUsd: number; stressFactor: number } | string {
  try {
    const result = computeBudget(
      {
        equityUsd: Number(hash.equity_usd ?? Number.NaN),
        portfolioHeat: Number(hash.portfolio_heat ?? Number.NaN),
        clusterStress: Number(hash.cluster_stress ?? Number.NaN),
        volRegime: Number(hash.vol_regime ?? Number.NaN),
      },
      params,
    );
    return { budgetUsd: result.budgetUsd, stressFactor: result.stressFactor };
  } catch (error) {
    if (error instanceof BudgetInputError) return `inputs not computable: ${error.message}`;
    throw error;
  }
}

/** Why a hash's budget does not follow from its inputs under `params`, or undefined when it does. */
export function accuracyProblem(hash: Readonly<Record<string, string>>, params: BudgetParams, toleranceUsd: number): string | undefined {
  const recomputed = recomputeFromHash(hash, params);
  if (typeof recomputed === 'string') return recomputed;
  const written = Number(hash.budget_usd);
  if (!(Math.abs(written - recomputed.budgetUsd) <= toleranceUsd)) {
    const brp = Number(hash.base_risk_pct);
    const hint = Number.isFinite(brp) && brp !== params.baseRiskPct ? ` (written with base_risk_pct ${brp}, configured BASE_RISK_PCT ${params.baseRiskPct})` : '';
    return `budget_usd ${hash.budget_usd} but the formula gives ${recomputed.budgetUsd}${hint}`;
  }
  return undefined;
}
