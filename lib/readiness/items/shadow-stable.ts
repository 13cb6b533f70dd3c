import type { ReadinessContext } from '../context';
import { leaderCycles, type ReadinessFacts } from '../facts';
import { count, pct, share } from '../figures';
import type { ReadinessItem } from '../report';
import type { ReadinessThresholds } from '../thresholds';
import { formatDuration } from '../window';

/** Shadow mode stable: the history covers the window, few cycles failed, budgets were written without long gaps. */
export function shadowStable(facts: ReadinessFacts, ctx: ReadinessContext, t: ReadinessThresholds): ReadinessItem {
  const cycles = leaderCycles(facts);
  const start = ctx.nowMs - ctx.windowMs;
  const failed = cycles.filter((c) => c.result === 'failed');
  const ok = cycles.filter((c) => c.result === 'ok');
  const earliest = facts.cycleBeforeWindow ? start : cycles[0]?.tsMs;
  const coveredMs = earliest === undefined ? 0 : ctx.nowMs - earliest;
  const covers = coveredMs >= ctx.windowMs - ctx.maxLeaderGapMs;
  // Gaps between cycles that wrote budgets, from the window's start (when the history reaches
  // back to it) to now: the time the gate had only ageing or no hashes to go by.
  const times = [...(facts.cycleBeforeWindow?.result === 'ok' ? [start] : []), ...ok.map((c) => c.tsMs), ctx.nowMs];
  let maxGapMs = 0;
  let gapAt = '';
  for (let i = 1; i < times.length; i++) {
    if (times[i]! - times[i - 1]! > maxGapMs) {
      maxGapMs = times[i]! - times[i - 1]!;
      gapAt = new Date(times[i - 1]!).toISOString();
    }
  }
  if (ok.length === 0 && covers) maxGapMs = Math.max(maxGapMs, ctx.windowMs);
  const failedShare = share(failed.length, cycles.length);
  const leaders = new Set(cycles.map((c) => c.leader));
  const details: string[] = [];
  if (!covers) details.push(`the cycle history covers ${formatDuration(coveredMs)} of the ${formatDuration(ctx.windowMs)} window (is CYCLE_HISTORY_MAXLEN 0, or the worker younger than the window?)`);
  if (failedShare > t.maxFailedCycleShare) {
    const causes = new Map<string, number>();
    for (const c of failed) causes.set(c.cause || 'unknown', (causes.get(c.cause || 'unknown') ?? 0) + 1);
    details.push(`failed cycles by cause: ${[...causes].map(([cause, n]) => `${cause} ${n}`).join(', ')}`);
  }
  if (maxGapMs > ctx.maxLeaderGapMs) details.push(`longest time without budgets written: ${formatDuration(maxGapMs)} from ${gapAt} (limit ${formatDuration(ctx.maxLeaderGapMs)}, HEALTH_MAX_BUDGET_AGE_SEC)`);
  if (leaders.size > 1) details.push(`leadership changed hands: ${[...leaders].join(', ')}`);
  const pass = covers && cycles.length > 0 && failedShare <= t.maxFailedCycleShare && maxGapMs <= ctx.maxLeaderGapMs;
  return {
    id: 'shadow_stable',
    title: 'Shadow mode stable',
    pass,
    summary: `${count(cycles.length, 'cycle')} over ${formatDuration(coveredMs)}, ${failed.length} failed (${pct(failedShare)}), longest gap ${formatDuration(maxGapMs)}`,
    figures: { cycles: cycles.length, ok: ok.length, skipped: cycles.filter((c) => c.result === 'skipped').length, failed: failed.length, failedShare, coveredSec: coveredMs / 1000, maxGapSec: maxGapMs / 1000, leaders: leaders.size },
    thresholds: { coveredSec: (ctx.windowMs - ctx.maxLeaderGapMs) / 1000, maxFailedShare: t.maxFailedCycleShare, maxGapSec: ctx.maxLeaderGapMs / 1000 },
    details,
    listed: [],
  };
}
