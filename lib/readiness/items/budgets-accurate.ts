import type { ReadinessContext } from '../context';
import type { ReadinessFacts } from '../facts';
import type { ReadinessItem } from '../report';
import type { ReadinessThresholds } from '../thresholds';

/** Budget computations accurate: every budget hash in Redis and every hash a decision used follows from its inputs. */
export function budgetsAccurate(facts: ReadinessFacts, ctx: ReadinessContext, t: ReadinessThresholds): ReadinessItem {
  const tally = facts.decisions;
  for (const hash of facts.budgets) tally.checkAccuracy(hash);
  const { checked, mismatched, examples } = tally.accuracy;
  const p = ctx.params;
  const details = [
    `recomputed with BASE_RISK_PCT ${p.baseRiskPct}, ALPHA_HEAT ${p.alphaHeat}, BETA_CLUSTER ${p.betaCluster}, GAMMA_VOL ${p.gammaVol}, MIN_BUDGET_K ${p.minBudgetUsd}, MAX_BUDGET_K ${p.maxBudgetUsd} (this configuration)`,
  ];
  if (checked === 0) details.push('no budget hash to check: no hash in Redis and no decision that read one');
  return {
    id: 'budgets_accurate',
    title: 'Budget computations accurate',
    pass: checked > 0 && mismatched === 0,
    summary: `${checked} ${checked === 1 ? 'hash' : 'hashes'} recomputed from their inputs, ${mismatched} differ`,
    figures: { checked, mismatched },
    thresholds: { mismatched: 0, toleranceUsd: t.budgetToleranceUsd },
    details,
    listed: examples.map((e) => ({ ...e })),
  };
}
