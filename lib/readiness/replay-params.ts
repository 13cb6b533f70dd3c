import { CONFIG_VARIABLES } from '../config';
import type { BudgetParams } from '../engine/compute-budget';
import { GATE_OPTION_SPECS } from '../../plugin/gate-options';

/** The candidate parameters of a replay: the engine's, and the gate's two windows (ms). */
export interface ReplayParams {
  budget: BudgetParams;
  /** Overrides the logged `violationWindowMs` of every decision when set. */
  violationWindowMs?: number;
  /** Overrides the logged `staleAfterMs` of every decision when set. */
  staleAfterMs?: number;
}

/** The engine parameters a replay takes, by their env names, and where each goes. */
const BUDGET_NAMES: Record<string, keyof BudgetParams> = {
  BASE_RISK_PCT: 'baseRiskPct',
  ALPHA_HEAT: 'alphaHeat',
  BETA_CLUSTER: 'betaCluster',
  GAMMA_VOL: 'gammaVol',
  MIN_BUDGET_K: 'minBudgetUsd',
  MAX_BUDGET_K: 'maxBudgetUsd',
};
/** The gate's windows, named as replay takes them (the gate options in ms). */
const WINDOW_NAMES = { VIOLATION_WINDOW_MS: 'violationWindowMs', STALE_AFTER_MS: 'staleAfterMs' } as const;

/** Every name `--set` accepts. */
export const REPLAY_PARAMETERS: readonly string[] = Object.freeze([...Object.keys(BUDGET_NAMES), ...Object.keys(WINDOW_NAMES)]);

/** A `--set` that cannot be used: names the parameter and what was wrong. Usage error (exit 2). */
export class ReplayParamError extends Error {
  readonly code = 'P28_REPLAY_PARAM';
  constructor(
    readonly parameter: string,
    readonly problem: string,
  ) {
    super(`--set ${parameter}: ${problem}`);
    this.name = 'ReplayParamError';
  }
}

/**
 * The candidate parameters from `--set NAME=VALUE` settings over the configured ones. Each value is
 * checked as the worker checks its env variable (or as the gate checks its option); the first bad
 * setting throws `ReplayParamError` naming it.
 */
export function parseReplaySettings(settings: readonly string[], configured: BudgetParams): ReplayParams {
  const budget: BudgetParams = { ...configured };
  const out: ReplayParams = { budget };
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    const name = (eq < 0 ? setting : setting.slice(0, eq)).trim();
    if (eq < 0) throw new ReplayParamError(name || '(empty)', 'expected NAME=VALUE');
    const raw = setting.slice(eq + 1).trim();
    if (name in BUDGET_NAMES) {
      const spec = CONFIG_VARIABLES.find((v) => v.env === name)!;
      const parsed = spec.schema.safeParse(raw);
      if (!parsed.success || raw === '') throw new ReplayParamError(name, parsed.success ? 'a value is required' : parsed.error.issues.map((i) => i.message).join('; '));
      budget[BUDGET_NAMES[name]!] = parsed.data as number;
    } else if (name in WINDOW_NAMES) {
      const option = WINDOW_NAMES[name as keyof typeof WINDOW_NAMES];
      const { min, max } = GATE_OPTION_SPECS[option];
      const value = raw === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(value) || value < min || value > max) throw new ReplayParamError(name, `expected a number of ms in [${min}, ${max}], got ${JSON.stringify(raw.slice(0, 40))}`);
      out[option] = value;
    } else {
      throw new ReplayParamError(name || '(empty)', `not a replay parameter; use one of ${REPLAY_PARAMETERS.join(', ')}`);
    }
  }
  if (budget.minBudgetUsd > budget.maxBudgetUsd) {
    throw new ReplayParamError('MIN_BUDGET_K', `must be <= MAX_BUDGET_K (${budget.maxBudgetUsd}), got ${budget.minBudgetUsd}`);
  }
  return out;
}
