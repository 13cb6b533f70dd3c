/**
 * The budget engine: a pure function of the portfolio's stress inputs, shared by the worker,
 * the benchmarks and anyone who wants to reproduce a budget by hand.
 *
 *   base_budget = equity_usd * BASE_RISK_PCT
 *   stress      = clamp(ALPHA_HEAT*heat + BETA_CLUSTER*cluster_stress + GAMMA_VOL*vol_regime, 0, 1)
 *   budget_usd  = clamp(base_budget * (1 - stress), MIN_BUDGET_K, MAX_BUDGET_K)
 */

export interface BudgetInputs {
  /** Portfolio equity in USD, >= 0. */
  equityUsd: number;
  /** Portfolio heat from the P2.6 Heat Gate, in [0,1]. */
  portfolioHeat: number;
  /** Stress of the symbol's cluster, in [0,1]. */
  clusterStress: number;
  /** Volatility regime level of the symbol, in [0,1]. */
  volRegime: number;
}

export interface BudgetParams {
  /** Share of equity one position may carry, in (0,1]. */
  baseRiskPct: number;
  /** Stress weights, each in [0,1]. */
  alphaHeat: number;
  betaCluster: number;
  gammaVol: number;
  /** Budget bounds in USD, 0 <= min <= max. */
  minBudgetUsd: number;
  maxBudgetUsd: number;
}

export interface BudgetResult {
  baseBudgetUsd: number;
  /** Composite stress in [0,1], rounded to 1e-6. */
  stressFactor: number;
  /** The budget in USD, rounded to the cent. */
  budgetUsd: number;
}

/** Thrown for input that would otherwise turn into a NaN or nonsensical budget. */
export class BudgetInputError extends RangeError {
  readonly code = 'P28_BUDGET_INPUT';
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${field}: expected ${expected}, got ${String(value)}`);
    this.name = 'BudgetInputError';
  }
}

function check(field: string, value: number, min: number, max: number, minExclusive = false): void {
  const ok = Number.isFinite(value) && (minExclusive ? value > min : value >= min) && value <= max;
  if (!ok) {
    const range = max === Infinity ? `a finite number ${minExclusive ? '>' : '>='} ${min}` : `a number in ${minExclusive ? '(' : '['}${min},${max}]`;
    throw new BudgetInputError(field, value, range);
  }
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
const roundTo = (x: number, decimals: number): number => Math.round(x * 10 ** decimals) / 10 ** decimals;

/** Rejects parameters that cannot produce a meaningful budget. */
export function validateBudgetParams(params: BudgetParams): void {
  check('baseRiskPct', params.baseRiskPct, 0, 1, true);
  check('alphaHeat', params.alphaHeat, 0, 1);
  check('betaCluster', params.betaCluster, 0, 1);
  check('gammaVol', params.gammaVol, 0, 1);
  check('minBudgetUsd', params.minBudgetUsd, 0, Infinity);
  check('maxBudgetUsd', params.maxBudgetUsd, params.minBudgetUsd, Infinity);
}

/**
 * Computes one symbol's position budget. Throws `BudgetInputError` for non-finite or
 * out-of-range input rather than returning a NaN budget: the caller skips that symbol and counts it.
 *
 * Stress is rounded to 1e-6 and the budget is computed from the rounded stress, then rounded to the
 * cent and clamped, so that every number written to Redis can be reproduced from the others by hand
 * (equity 100000, heat 0.65, vol NORMAL gives stress 0.326 and budget 1348, not 1348.0000000000002).
 */
export function computeBudget(inputs: BudgetInputs, params: BudgetParams): BudgetResult {
  validateBudgetParams(params);
  check('equityUsd', inputs.equityUsd, 0, Infinity);
  check('portfolioHeat', inputs.portfolioHeat, 0, 1);
  check('clusterStress', inputs.clusterStress, 0, 1);
  check('volRegime', inputs.volRegime, 0, 1);

  const baseBudgetUsd = inputs.equityUsd * params.baseRiskPct;
  const rawStress =
    params.alphaHeat * inputs.portfolioHeat +
    params.betaCluster * inputs.clusterStress +
    params.gammaVol * inputs.volRegime;
  const stressFactor = clamp(roundTo(rawStress, 6), 0, 1);
  const budgetUsd = clamp(roundTo(baseBudgetUsd * (1 - stressFactor), 2), params.minBudgetUsd, params.maxBudgetUsd);
  return { baseBudgetUsd, stressFactor, budgetUsd };
}
