import type { ReadinessContext } from './context';
import type { ReadinessFacts } from './facts';
import { budgetsAccurate } from './items/budgets-accurate';
import { governorIntegration } from './items/governor-integration';
import { noFalsePositives } from './items/no-false-positives';
import { rollbackReady } from './items/rollback-ready';
import { shadowStable } from './items/shadow-stable';
import { staleInputs } from './items/stale-inputs';
import type { ReadinessReport } from './report';
import { thresholdsWith } from './thresholds';

/**
 * The guide's pre-activation checklist judged from recorded data: a pure function of the cycle
 * history, the decision log, the violation stream, the budget hashes and the mode override over a
 * window. No I/O here: `read-history.ts` gathers the facts, the CLI and the HTTP API render them.
 * Each item is judged in its own file under `items/`; the names the judgement speaks in are
 * exported from here too.
 */

export { READINESS_THRESHOLDS, type ReadinessThresholds } from './thresholds';
export { READINESS_ITEMS, type ReadinessItem, type ReadinessItemId, type ReadinessReport } from './report';
export type { ReadinessContext } from './context';
export type { ReadinessFacts, ViolationSeen } from './facts';
export { recomputeFromHash } from './budget-accuracy';
export { DecisionTally } from './decision-tally';
export { violationOnsets } from './items/no-false-positives';

/** The checklist over the window: every item with its figures, and `ready` only when all pass. */
export function judgeReadiness(facts: ReadinessFacts, ctx: ReadinessContext): ReadinessReport {
  const t = thresholdsWith(ctx.thresholds);
  const items = [
    shadowStable(facts, ctx, t),
    budgetsAccurate(facts, ctx, t),
    noFalsePositives(facts, ctx, t),
    governorIntegration(facts, t),
    staleInputs(facts, t),
    rollbackReady(facts, ctx),
  ];
  return {
    ready: items.every((item) => item.pass),
    evaluatedAt: new Date(ctx.nowMs).toISOString(),
    window: { from: new Date(ctx.nowMs - ctx.windowMs).toISOString(), to: new Date(ctx.nowMs).toISOString(), seconds: ctx.windowMs / 1000 },
    items,
  };
}
