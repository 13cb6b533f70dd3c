import type { LoggedDecision } from '../../types/decision-log-entry';
import type { GateDecision, PermitRequest } from '../../types/permit';
import { decideFromParsedFields, type DecisionPolicy } from '../../plugin/decide';
import { readBudgetHash, type BudgetHash } from '../../types/budget-hash';
import type { BudgetParams } from '../engine/compute-budget';
import { recomputeFromHash } from './budget-accuracy';
import type { ReplayParams } from './replay-params';

/**
 * What-if replay: logged decisions judged again under candidate parameters, with the budget
 * recomputed from each decision's logged inputs by the engine (`computeBudget`) and the decision
 * taken by the gate's own code (`decideFromBudgetFields`) at the logged time, with the reservations
 * of other plans as logged. Pure: the CLI feeds
 * it the decisions of a window one by one (`read-history.ts`).
 *
 * A "block" here is a would-block: what enforce blocks, whatever mode the hash was in.
 */

/** The plan of a logged decision, as the gate saw it. */
export function loggedPlan(d: LoggedDecision): PermitRequest {
  const plan: PermitRequest = { planId: d.planId || 'replay', symbol: d.symbol, action: d.action || 'OPEN' };
  if (d.side !== undefined) plan.side = d.side;
  if (d.qty !== undefined) plan.qty = d.qty;
  if (d.notionalUsd !== undefined) plan.notionalUsd = d.notionalUsd;
  if (d.reduceOnly !== undefined) plan.reduceOnly = d.reduceOnly;
  return plan;
}

/**
 * The budget hash the worker would have written in the decision's cycle under `budget`: budget,
 * stress and over-budget amount recomputed from the logged inputs. `last_violation_ts`: a position
 * over the new budget is a violation of this very cycle; one within it keeps an earlier violation
 * as logged, and loses the one of this cycle (earlier cycles' budgets are not in the log, so their
 * violations stand as they were). Undefined when the inputs cannot be computed.
 */
export function hashUnder(d: LoggedDecision, budget: BudgetParams): Record<string, string> | undefined {
  if (!d.hash) return undefined;
  const recomputed = recomputeFromHash(d.hash, budget);
  if (typeof recomputed === 'string') return undefined;
  const hash = { ...d.hash };
  hash.budget_usd = String(recomputed.budgetUsd);
  hash.stress_factor = String(recomputed.stressFactor);
  hash.base_risk_pct = String(budget.baseRiskPct);
  // A hash without position fields (the upstream service's 10-field shape) gets none added.
  const notional = hash.position_notional_usd === undefined ? 0 : Number(hash.position_notional_usd);
  const over = Number.isFinite(notional) ? Math.max(0, Math.round((notional - recomputed.budgetUsd) * 100) / 100) : 0;
  if (hash.position_notional_usd !== undefined) hash.over_budget_usd = String(over);
  const cycleSec = Number(hash.timestamp);
  const logged = hash.last_violation_ts === undefined ? undefined : Number(hash.last_violation_ts);
  if (over > 0) hash.last_violation_ts = String(cycleSec);
  else if (logged !== undefined && logged >= cycleSec) delete hash.last_violation_ts;
  return hash;
}

/** The gate's decision for a logged plan under `params`, or undefined when it cannot be judged again (no hash was read). */
export function rejudge(d: LoggedDecision, params: ReplayParams): GateDecision | undefined {
  return rejudgeOn(d, rebuilt(hashUnder(d, params.budget)), params);
}

/** A rebuilt hash and its parse (`readBudgetHash`), made once for every decision that read it. */
interface RebuiltHash {
  fields: Record<string, string>;
  parsed: BudgetHash | undefined;
}

const rebuilt = (fields: Record<string, string> | undefined): RebuiltHash | undefined => (fields ? { fields, parsed: readBudgetHash(fields) } : undefined);

/** `rejudge` on a hash already rebuilt by `hashUnder` (decisions of one cycle share it). */
function rejudgeOn(d: LoggedDecision, hash: RebuiltHash | undefined, params: ReplayParams): GateDecision | undefined {
  if (!hash) return undefined;
  const policy: DecisionPolicy = {
    staleAfterMs: params.staleAfterMs ?? d.policy.staleAfterMs,
    violationWindowMs: params.violationWindowMs ?? d.policy.violationWindowMs,
    maxClockSkewMs: d.policy.maxClockSkewMs,
    forceShadow: d.policy.forceShadow,
  };
  // Plans in flight are taken as logged: the headroom they held when the decision was taken (a
  // replay cannot know which of them the candidate parameters would have let through).
  return decideFromParsedFields(loggedPlan(d), hash.fields, hash.parsed, d.tsMs, policy, d.reservedUsd);
}

/** The plan's own size in USD: `notionalUsd`, else qty at the hash's price; undefined when neither is known. */
function planNotional(d: LoggedDecision): number | undefined {
  if (d.notionalUsd !== undefined) return d.notionalUsd;
  const price = Number(d.hash?.position_price);
  if (d.qty !== undefined && Number.isFinite(price) && price > 0) return d.qty * price;
  return undefined;
}

export interface ChangeTotals {
  count: number;
  /** Sum of the plans' own notional (USD) where known. */
  notionalUsd: number;
  /** Plans whose size in USD is not known (qty without a price). */
  unknownNotional: number;
}

export interface SymbolChange {
  symbol: string;
  newlyBlocked: number;
  newlyBlockedUsd: number;
  newlyAllowed: number;
  newlyAllowedUsd: number;
}

export interface ReplaySummary {
  /** Logged decisions read. */
  decisions: number;
  /** Decisions judged again (those that read a budget hash). */
  rejudged: number;
  /** Decisions that could not be judged again, by logged reason (no hash was read: nothing to recompute). */
  notRejudged: Record<string, number>;
  /** Re-judged decisions whose would-block is the same as logged. */
  unchanged: number;
  newlyBlocked: ChangeTotals;
  newlyAllowed: ChangeTotals;
  /** Re-judged decisions that now fail open, or no longer do (a changed STALE_AFTER_MS). */
  newlyFailOpen: number;
  noLongerFailOpen: number;
  /**
   * Fidelity check: decisions that, judged again under the configured parameters (no `--set`),
   * do not come out as logged. Non-zero when the parameters changed during the window or this is
   * not the worker's configuration.
   */
  baselineDiffers: number;
  baselineExamples: Array<{ id: string; symbol: string; logged: string; replayed: string }>;
  /** Symbols with the most changed decisions, most first. */
  symbols: SymbolChange[];
}

const TOP_SYMBOLS = 10;
/** Rebuilt hashes kept at most: the decisions of one cycle and symbol share theirs. */
const HASH_CACHE_ENTRIES = 20000;
const emptyTotals = (): ChangeTotals => ({ count: 0, notionalUsd: 0, unknownNotional: 0 });
const verdict = (d: { allow: boolean; reason: string; wouldBlock: boolean }): string => `${d.reason}${d.wouldBlock ? ' (would block)' : ''}`;

/** Re-judges decisions one at a time (a million are never held at once) and sums up what changes. */
export class ReplayTally {
  private readonly summary: ReplaySummary = {
    decisions: 0,
    rejudged: 0,
    notRejudged: {},
    unchanged: 0,
    newlyBlocked: emptyTotals(),
    newlyAllowed: emptyTotals(),
    newlyFailOpen: 0,
    noLongerFailOpen: 0,
    baselineDiffers: 0,
    baselineExamples: [],
    symbols: [],
  };
  private readonly bySymbol = new Map<string, SymbolChange>();
  private readonly baseline: ReplayParams;
  /** The hash of each symbol and cycle rebuilt under the candidate and the configured parameters. */
  private readonly hashes = new Map<string, { candidate: RebuiltHash | undefined; baseline: RebuiltHash | undefined }>();

  constructor(
    private readonly candidate: ReplayParams,
    configured: BudgetParams,
  ) {
    this.baseline = { budget: configured };
  }

  add(d: LoggedDecision): void {
    const s = this.summary;
    s.decisions += 1;
    const hashes = this.hashesOf(d);
    const replayed = rejudgeOn(d, hashes?.candidate, this.candidate);
    if (replayed === undefined) {
      s.notRejudged[d.reason] = (s.notRejudged[d.reason] ?? 0) + 1;
      return;
    }
    s.rejudged += 1;
    const baseline = rejudgeOn(d, hashes?.baseline, this.baseline);
    if (baseline && (baseline.reason !== d.reason || baseline.wouldBlock !== d.wouldBlock || baseline.allow !== d.allow)) {
      s.baselineDiffers += 1;
      if (s.baselineExamples.length < 5) s.baselineExamples.push({ id: d.id, symbol: d.symbol, logged: verdict(d), replayed: verdict(baseline) });
    }
    if (replayed.failOpen && !d.failOpen) s.newlyFailOpen += 1;
    if (!replayed.failOpen && d.failOpen) s.noLongerFailOpen += 1;
    if (replayed.wouldBlock === d.wouldBlock) {
      s.unchanged += 1;
      return;
    }
    const notional = planNotional(d);
    const totals = replayed.wouldBlock ? s.newlyBlocked : s.newlyAllowed;
    totals.count += 1;
    if (notional === undefined) totals.unknownNotional += 1;
    else totals.notionalUsd += notional;
    const symbol = this.bySymbol.get(d.symbol) ?? { symbol: d.symbol, newlyBlocked: 0, newlyBlockedUsd: 0, newlyAllowed: 0, newlyAllowedUsd: 0 };
    if (replayed.wouldBlock) {
      symbol.newlyBlocked += 1;
      symbol.newlyBlockedUsd += notional ?? 0;
    } else {
      symbol.newlyAllowed += 1;
      symbol.newlyAllowedUsd += notional ?? 0;
    }
    this.bySymbol.set(d.symbol, symbol);
  }

  private hashesOf(d: LoggedDecision): { candidate: RebuiltHash | undefined; baseline: RebuiltHash | undefined } | undefined {
    // Every field of the hash as read: two hashes that differ in anything are rebuilt apart.
    const key = d.hashKey ?? (d.hash ? Object.values(d.hash).join('|') : undefined);
    if (key === undefined) return undefined;
    let hashes = this.hashes.get(key);
    if (hashes === undefined) {
      if (this.hashes.size >= HASH_CACHE_ENTRIES) this.hashes.clear();
      hashes = { candidate: rebuilt(hashUnder(d, this.candidate.budget)), baseline: rebuilt(hashUnder(d, this.baseline.budget)) };
      this.hashes.set(key, hashes);
    }
    return hashes;
  }

  result(): ReplaySummary {
    const round = (t: ChangeTotals): ChangeTotals => ({ ...t, notionalUsd: Math.round(t.notionalUsd * 100) / 100 });
    return {
      ...this.summary,
      newlyBlocked: round(this.summary.newlyBlocked),
      newlyAllowed: round(this.summary.newlyAllowed),
      symbols: [...this.bySymbol.values()]
        .sort((a, b) => b.newlyBlocked + b.newlyAllowed - (a.newlyBlocked + a.newlyAllowed) || a.symbol.localeCompare(b.symbol))
        .slice(0, TOP_SYMBOLS)
        .map((c) => ({ ...c, newlyBlockedUsd: Math.round(c.newlyBlockedUsd * 100) / 100, newlyAllowedUsd: Math.round(c.newlyAllowedUsd * 100) / 100 })),
    };
  }
}
