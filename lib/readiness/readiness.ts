import type { RecordedCycle } from '../../types/cycle-history-entry';
import { hashKeyOf, type LoggedDecision } from '../../types/decision-log-entry';
import type { Mode } from '../../types/mode';
import { BudgetInputError, computeBudget, type BudgetParams } from '../engine/compute-budget';
import { formatDuration } from './window';

/**
 * The guide's pre-activation checklist judged from recorded data: a pure function of the cycle
 * history, the decision log, the violation stream, the budget hashes and the mode override over a
 * window. No I/O here: `read-history.ts` gathers the facts, the CLI and the HTTP API render them.
 */

/** What each item is held to. Shares are fractions (0.05 = 5 %). */
export const READINESS_THRESHOLDS = Object.freeze({
  /** Shadow stable: largest share of the leader's cycles that may fail. */
  maxFailedCycleShare: 0.01,
  /** No false positives: largest share of would-blocks that the recorded data may leave unexplained. */
  maxUnexplainedShare: 0.01,
  /** A symbol's would-block rate stands out when it is at least this ... */
  outlierMinRate: 0.2,
  /** ... and this many times the rate over all symbols ... */
  outlierRateFactor: 3,
  /** ... over at least this many judged decisions. */
  outlierMinDecisions: 20,
  /** A symbol flaps when it went over budget again this many times per 24 h of window (at least 5). */
  flapOnsetsPer24h: 10,
  /** Governor integration: largest share of decisions that may fail open. */
  maxFailOpenShare: 0.01,
  /** The guide: stale inputs under 5 % of computations. */
  maxStaleInputShare: 0.05,
  /** Budget accuracy: a budget may differ from its recomputation by this much (USD; one cent of rounding). */
  budgetToleranceUsd: 0.01,
  /** Distinct hashes recomputed at most (current hashes and the hashes decisions used). */
  maxAccuracyChecks: 100000,
});
export type ReadinessThresholds = typeof READINESS_THRESHOLDS;

export const READINESS_ITEMS = ['shadow_stable', 'budgets_accurate', 'no_false_positives', 'governor_integration', 'stale_inputs', 'rollback_ready'] as const;
export type ReadinessItemId = (typeof READINESS_ITEMS)[number];

/** One checklist item: pass or fail, the figures, what they were held to, and the evidence. */
export interface ReadinessItem {
  id: ReadinessItemId;
  /** The guide's wording. */
  title: string;
  pass: boolean;
  /** One line: the figures against the threshold. */
  summary: string;
  figures: Record<string, number | string | null>;
  thresholds: Record<string, number | string>;
  /** Lines of evidence: what failed and where to look. */
  details: string[];
  /** Symbols (or hashes) listed for review. */
  listed: Array<Record<string, number | string>>;
}

export interface ReadinessReport {
  ready: boolean;
  evaluatedAt: string;
  window: { from: string; to: string; seconds: number };
  items: ReadinessItem[];
}

/** What the judgement depends on besides the recorded data. */
export interface ReadinessContext {
  nowMs: number;
  windowMs: number;
  /** The budget engine's parameters of the configuration (the env file the worker runs on). */
  params: BudgetParams;
  /** P28_MODE of that configuration. */
  configuredMode: Mode;
  /** Longest time without budgets written that still counts as stable (HEALTH_MAX_BUDGET_AGE_SEC). */
  maxLeaderGapMs: number;
  violationRepublishMs: number;
  computeIntervalMs: number;
  thresholds?: Partial<ReadinessThresholds>;
}

/** A violation stream entry: which symbol, when (epoch ms). */
export interface ViolationSeen {
  symbol: string;
  tsMs: number;
}

/** Everything read for the window. */
export interface ReadinessFacts {
  /** Cycles recorded in the window, oldest first. */
  cycles: readonly RecordedCycle[];
  /** The latest cycle recorded before the window, if any: the history reaches back to the window's start. */
  cycleBeforeWindow?: RecordedCycle;
  /** The decisions of the window, tallied (`DecisionTally`). */
  decisions: DecisionTally;
  violations: readonly ViolationSeen[];
  /** The budget hashes in Redis now. */
  budgets: ReadonlyArray<Record<string, string>>;
  /** The value of the run-time override key, or null when unset. */
  modeOverride: string | null;
}

const pct = (x: number): string => `${(Math.round(x * 10000) / 100).toString()} %`;
const share = (n: number, of: number): number => (of === 0 ? 0 : n / of);
const JUDGED_REASONS: ReadonlySet<string> = new Set(['within_budget', 'shadow_would_block', 'p28_budget_violation']);
const TOP = 10;
const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

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
function accuracyProblem(hash: Readonly<Record<string, string>>, params: BudgetParams, toleranceUsd: number): string | undefined {
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

/**
 * The decisions of a window, tallied one by one (a million of them are never held at once): counts
 * per gate, per reason and per symbol, would-blocks with the reason each is or is not explained by
 * fresh data, and the accuracy of the hashes they used.
 */
export class DecisionTally {
  total = 0;
  withHash = 0;
  failOpen = 0;
  readonly failOpenByReason = new Map<string, number>();
  readonly gates = new Map<string, { via: string; decisions: number }>();
  wouldBlocks = 0;
  readonly unexplained: Array<{ id: string; symbol: string; why: string }> = [];
  unexplainedCount = 0;
  readonly bySymbol = new Map<string, { judged: number; wouldBlock: number }>();
  readonly accuracy = { checked: 0, mismatched: 0, examples: [] as Array<{ symbol: string; timestamp: string; why: string }> };
  private readonly checkedHashes = new Set<string>();
  private readonly cyclesBySecond = new Map<number, RecordedCycle>();
  private readonly t: ReadinessThresholds;

  constructor(
    private readonly ctx: ReadinessContext,
    cycles: readonly RecordedCycle[],
  ) {
    this.t = { ...READINESS_THRESHOLDS, ...ctx.thresholds };
    for (const cycle of cycles) this.cyclesBySecond.set(Math.floor(cycle.tsMs / 1000), cycle);
  }

  add(d: LoggedDecision): void {
    this.total += 1;
    const gate = this.gates.get(d.gate) ?? { via: d.via, decisions: 0 };
    gate.decisions += 1;
    this.gates.set(d.gate, gate);
    if (d.failOpen) {
      this.failOpen += 1;
      this.failOpenByReason.set(d.reason, (this.failOpenByReason.get(d.reason) ?? 0) + 1);
    }
    if (d.hashKey !== undefined || d.hash !== undefined) {
      this.withHash += 1;
      // The hash itself is rebuilt only the first time it is seen.
      const key = d.hashKey ?? hashKeyOf(d.hash!);
      if (!this.checkedHashes.has(key)) this.checkAccuracy(d.hash!, key);
    }
    if (JUDGED_REASONS.has(d.reason)) {
      const symbol = this.bySymbol.get(d.symbol) ?? { judged: 0, wouldBlock: 0 };
      symbol.judged += 1;
      if (d.wouldBlock) symbol.wouldBlock += 1;
      this.bySymbol.set(d.symbol, symbol);
    }
    if (d.wouldBlock) {
      this.wouldBlocks += 1;
      const why = this.unexplainedBecause(d);
      if (why !== undefined) {
        this.unexplainedCount += 1;
        if (this.unexplained.length < TOP) this.unexplained.push({ id: d.id, symbol: d.symbol, why });
      }
    }
  }

  /** Recomputes a hash once (by its `hashKeyOf`), within `maxAccuracyChecks`. */
  checkAccuracy(hash: Readonly<Record<string, string>>, key = hashKeyOf(hash)): void {
    if (this.checkedHashes.has(key) || this.checkedHashes.size >= this.t.maxAccuracyChecks) return;
    this.checkedHashes.add(key);
    this.accuracy.checked += 1;
    const problem = accuracyProblem(hash, this.ctx.params, this.t.budgetToleranceUsd);
    if (problem === undefined) return;
    this.accuracy.mismatched += 1;
    if (this.accuracy.examples.length < TOP) this.accuracy.examples.push({ symbol: hash.symbol ?? '?', timestamp: hash.timestamp ?? '?', why: problem });
  }

  /**
   * Undefined when the would-block is explained by fresh data, else why not. Explained means: the
   * hash's budget follows from its inputs, the hash was at most `maxLeaderGapMs` old, the plan's
   * projected notional exceeds that budget or the hash holds a violation younger than the gate's
   * window, and the cycle that wrote the hash is in the history and replaced no input by a fallback.
   */
  private unexplainedBecause(d: LoggedDecision): string | undefined {
    const h = d.hash;
    if (!h) return 'no hash inputs logged';
    const problem = accuracyProblem(h, this.ctx.params, this.t.budgetToleranceUsd);
    if (problem !== undefined) return problem;
    const hashSec = Number(h.timestamp);
    const ageMs = d.tsMs - hashSec * 1000;
    if (ageMs > this.ctx.maxLeaderGapMs) return `hash ${Math.round(ageMs / 1000)} s old (limit ${Math.round(this.ctx.maxLeaderGapMs / 1000)} s)`;
    const budget = Number(h.budget_usd);
    const overBudget = d.projectedNotionalUsd !== undefined && d.projectedNotionalUsd > budget;
    const lvts = Number(h.last_violation_ts);
    const recentViolation = Number.isFinite(lvts) && h.last_violation_ts !== undefined && d.tsMs - lvts * 1000 < d.policy.violationWindowMs;
    if (!overBudget && !recentViolation) return 'neither the projected notional nor a recent violation exceeds the budget';
    const cycle = this.cyclesBySecond.get(hashSec);
    if (!cycle) return 'the cycle that wrote the hash is not in the cycle history';
    const fallbacks = Object.entries(cycle.stale).filter(([, n]) => n > 0);
    if (fallbacks.length > 0) return `the cycle that wrote the hash used fallback inputs (${fallbacks.map(([k, n]) => `${k} ${n}`).join(', ')})`;
    return undefined;
  }
}

/** The checklist over the window: every item with its figures, and `ready` only when all pass. */
export function judgeReadiness(facts: ReadinessFacts, ctx: ReadinessContext): ReadinessReport {
  const t: ReadinessThresholds = { ...READINESS_THRESHOLDS, ...ctx.thresholds };
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

const leaderCycles = (facts: ReadinessFacts): RecordedCycle[] => facts.cycles.filter((c) => c.role === 'leader' || c.result === 'failed');

function shadowStable(facts: ReadinessFacts, ctx: ReadinessContext, t: ReadinessThresholds): ReadinessItem {
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

function budgetsAccurate(facts: ReadinessFacts, ctx: ReadinessContext, t: ReadinessThresholds): ReadinessItem {
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

function noFalsePositives(facts: ReadinessFacts, ctx: ReadinessContext, t: ReadinessThresholds): ReadinessItem {
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

function governorIntegration(facts: ReadinessFacts, t: ReadinessThresholds): ReadinessItem {
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

function staleInputs(facts: ReadinessFacts, t: ReadinessThresholds): ReadinessItem {
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

function rollbackReady(facts: ReadinessFacts, ctx: ReadinessContext): ReadinessItem {
  const last = [...leaderCycles(facts)].reverse().find((c) => c.result !== 'failed');
  const details: string[] = [];
  const overrideSet = facts.modeOverride !== null;
  if (overrideSet) details.push(`the run-time override quantum:p28:mode is set (${JSON.stringify(facts.modeOverride)}): clear it (p28-worker mode --clear) so the env file is the one truth`);
  if (last && last.modeSource !== 'env') details.push(`the leader's last cycle took its mode from ${last.modeSource}`);
  const agrees = last === undefined || last.mode === ctx.configuredMode;
  if (!agrees) details.push(`this configuration says P28_MODE=${ctx.configuredMode} but the leader's last cycle ran ${last?.mode}: is this the worker's env file?`);
  if (!last) details.push('no completed leader cycle in the window to confirm the mode the worker runs');
  details.push('rollback: set P28_MODE=shadow in the env file and restart (a starting worker clears any override); emergency: stop the worker and every gate fails open within BUDGET_HASH_TTL_SEC');
  return {
    id: 'rollback_ready',
    title: 'Rollback plan ready',
    pass: !overrideSet && last !== undefined && last.modeSource === 'env' && agrees,
    summary: `mode ${last?.mode ?? 'unknown'} from ${last?.modeSource ?? 'unknown'}, override ${overrideSet ? 'set' : 'none'}, P28_MODE=${ctx.configuredMode}`,
    figures: { mode: last?.mode ?? null, modeSource: last?.modeSource ?? null, override: facts.modeOverride, configuredMode: ctx.configuredMode },
    thresholds: { modeSource: 'env', override: 'none' },
    details,
    listed: [],
  };
}
