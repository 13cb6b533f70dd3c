import type { RecordedCycle } from '../../types/cycle-history-entry';
import { hashKeyOf, type LoggedDecision } from '../../types/decision-log-entry';
import { accuracyProblem } from './budget-accuracy';
import type { ReadinessContext } from './context';
import { TOP } from './figures';
import { thresholdsWith, type ReadinessThresholds } from './thresholds';

const JUDGED_REASONS: ReadonlySet<string> = new Set(['within_budget', 'shadow_would_block', 'p28_budget_violation']);

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
    this.t = thresholdsWith(ctx.thresholds);
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
