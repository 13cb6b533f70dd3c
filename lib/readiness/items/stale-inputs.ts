import { leaderCycles, type ReadinessFacts } from '../facts';
import { count, pct, share } from '../figures';
import type { ReadinessItem } from '../report';
import type { ReadinessThresholds } from '../thresholds';

/** Stale inputs under 5 % of computations: the fallbacks the leader's cycles used, per budget computed. */
export function staleInputs(facts: ReadinessFacts, t: ReadinessThresholds): ReadinessItem {
  const cycles = leaderCycles(facts).filter((c) => c.result !== 'failed');
  const byType = new Map<string, number>();
  let stale = 0;
  let computations = 0;
  for (const c of cycles) {
    // A cycle that computed nothing (no portfolio state) still counts as one computation.
    computations += Math.max(1, c.symbols);
    for (const [type, n] of Object.entries(c.stale)) {
      stale += n;
      byType.set(type, (byType.get(type) ?? 0) + n);
    }
  }
  const staleShare = share(stale, computations);
  const details = byType.size > 0 ? [`fallbacks by input: ${[...byType].map(([k, n]) => `${k} ${n}`).join(', ')}`] : [];
  if (cycles.length === 0) details.push('no completed leader cycle in the window');
  return {
    id: 'stale_inputs',
    title: 'Stale inputs under 5 % of computations',
    pass: cycles.length > 0 && staleShare < t.maxStaleInputShare,
    summary: `${count(stale, 'fallback')} in ${count(computations, 'budget computation')} (${pct(staleShare)})`,
    figures: { stale, computations, staleShare },
    thresholds: { maxStaleShare: t.maxStaleInputShare },
    details,
    listed: [...byType].map(([input, n]) => ({ input, fallbacks: n })),
  };
}
