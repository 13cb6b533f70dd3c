import type { ReadinessContext } from '../context';
import type { ReadinessFacts, ViolationSeen } from '../facts';
import { count, pct, share, TOP } from '../figures';
import type { ReadinessItem } from '../report';
import type { ReadinessThresholds } from '../thresholds';

/** No false positives: would-blocks explained by fresh data, no symbol standing out, none flapping. */
export function noFalsePositives(facts: ReadinessFacts, ctx: ReadinessContext, t: ReadinessThresholds): ReadinessItem {
  const tally = facts.decisions;
  const unexplainedShare = share(tally.unexplainedCount, tally.wouldBlocks);
  let judged = 0;
  let blocked = 0;
  for (const s of tally.bySymbol.values()) {
    judged += s.judged;
    blocked += s.wouldBlock;
  }
  const overallRate = share(blocked, judged);
  const outliers = [...tally.bySymbol]
    .map(([symbol, s]) => ({ symbol, judged: s.judged, wouldBlock: s.wouldBlock, rate: share(s.wouldBlock, s.judged) }))
    .filter((s) => s.judged >= t.outlierMinDecisions && s.rate >= t.outlierMinRate && s.rate >= t.outlierRateFactor * overallRate)
    .sort((a, b) => b.rate - a.rate);
  const flapLimit = Math.max(5, Math.ceil((t.flapOnsetsPer24h * ctx.windowMs) / 86400000));
  const flapping = violationOnsets(facts.violations, 2 * ctx.violationRepublishMs + ctx.computeIntervalMs + 1000)
    .filter((s) => s.onsets >= flapLimit)
    .sort((a, b) => b.onsets - a.onsets);
  const details: string[] = [];
  for (const u of tally.unexplained) details.push(`unexplained would-block ${u.id} ${u.symbol}: ${u.why}`);
  if (tally.unexplainedCount > tally.unexplained.length) details.push(`... and ${tally.unexplainedCount - tally.unexplained.length} more`);
  for (const o of outliers) details.push(`${o.symbol}: would-block rate ${pct(o.rate)} of ${o.judged} decisions (all symbols ${pct(overallRate)})`);
  for (const f of flapping) details.push(`${f.symbol}: went over budget ${f.onsets} times in the window (limit ${flapLimit})`);
  if (tally.wouldBlocks === 0) details.push('no would-blocks in the window: nothing to explain');
  const pass = unexplainedShare <= t.maxUnexplainedShare && outliers.length === 0 && flapping.length === 0;
  return {
    id: 'no_false_positives',
    title: 'No false positives',
    pass,
    summary: `${count(tally.wouldBlocks, 'would-block')}, ${tally.unexplainedCount} not explained by fresh data (${pct(unexplainedShare)}); ${count(outliers.length, 'symbol')} standing out, ${flapping.length} flapping`,
    figures: { wouldBlocks: tally.wouldBlocks, unexplained: tally.unexplainedCount, unexplainedShare, overallRate, outliers: outliers.length, flapping: flapping.length },
    thresholds: {
      maxUnexplainedShare: t.maxUnexplainedShare,
      outlier: `rate >= ${pct(t.outlierMinRate)} and >= ${t.outlierRateFactor}x all symbols, over >= ${t.outlierMinDecisions} decisions`,
      flapOnsets: flapLimit,
    },
    details,
    listed: [
      ...outliers.slice(0, TOP).map((o) => ({ symbol: o.symbol, kind: 'would_block_rate', judged: o.judged, wouldBlock: o.wouldBlock, rate: o.rate })),
      ...flapping.slice(0, TOP).map((f) => ({ symbol: f.symbol, kind: 'flapping', onsets: f.onsets })),
    ],
  };
}

/**
 * How many times each symbol went over budget in the window: its first violation entry, and every
 * entry after a silence longer than `silenceMs` (a symbol that stays over is announced again every
 * VIOLATION_REPUBLISH_SEC, so a longer silence means it was back within budget).
 */
export function violationOnsets(violations: readonly ViolationSeen[], silenceMs: number): Array<{ symbol: string; onsets: number }> {
  const last = new Map<string, number>();
  const onsets = new Map<string, number>();
  for (const v of [...violations].sort((a, b) => a.tsMs - b.tsMs)) {
    const previous = last.get(v.symbol);
    if (previous === undefined || v.tsMs - previous > silenceMs) onsets.set(v.symbol, (onsets.get(v.symbol) ?? 0) + 1);
    last.set(v.symbol, v.tsMs);
  }
  return [...onsets].map(([symbol, n]) => ({ symbol, onsets: n }));
}
