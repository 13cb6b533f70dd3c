import type { ReadinessFacts } from '../facts';
import { count, pct, share } from '../figures';
import type { ReadinessItem } from '../report';
import type { ReadinessThresholds } from '../thresholds';

/** Governor integration tested: gates logged decisions, judged plans on budget hashes, and seldom failed open. */
export function governorIntegration(facts: ReadinessFacts, t: ReadinessThresholds): ReadinessItem {
  const tally = facts.decisions;
  const failOpenShare = share(tally.failOpen, tally.total);
  const details = [...tally.gates].map(([gate, g]) => `gate ${gate} (${g.via}): ${g.decisions} decisions`);
  if (tally.total === 0) details.push('no decision logged in the window: is the gate deployed, and DECISION_LOG_MAXLEN (decisionLogMaxLen) above 0?');
  else if (tally.withHash === 0) details.push('no decision read a budget hash: the gates never judged a plan against a budget');
  if (tally.failOpen > 0) details.push(`fail-open by reason: ${[...tally.failOpenByReason].map(([r, n]) => `${r} ${n}`).join(', ')}`);
  return {
    id: 'governor_integration',
    title: 'Governor integration tested',
    pass: tally.total > 0 && tally.withHash > 0 && failOpenShare <= t.maxFailOpenShare,
    summary: `${count(tally.total, 'decision')} from ${count(tally.gates.size, 'gate')}, ${tally.withHash} judged on a hash, ${tally.failOpen} failed open (${pct(failOpenShare)})`,
    figures: { decisions: tally.total, gates: tally.gates.size, withHash: tally.withHash, failOpen: tally.failOpen, failOpenShare },
    thresholds: { minDecisions: 1, minGates: 1, maxFailOpenShare: t.maxFailOpenShare },
    details,
    listed: [...tally.gates].map(([gate, g]) => ({ gate, via: g.via, decisions: g.decisions })),
  };
}
