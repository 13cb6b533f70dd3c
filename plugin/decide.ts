import { BudgetHash, knownPosition, readBudgetHash } from '../types/budget-hash';
import { Mode } from '../types/mode';
import {
  CLOSE_ACTIONS,
  PermitRequest,
  type FailOpenReason,
  type GateDecision,
  type ViolationDetail,
} from '../types/permit';

import { budgetFreshness } from './budget-freshness';
import type { DecisionPolicy } from './gate-options';

export type { DecisionPolicy } from './gate-options';

/** What a plan does to the symbol's exposure, as judged from the plan and the budget hash. */
export interface PlanEffect {
  /** True when the plan cannot grow the position (|position + delta| <= |position|). */
  reducing: boolean;
  /** Position notional in USD once the plan is filled. */
  projectedNotionalUsd: number;
}

/**
 * A fail-open allow: the gate could not judge, so the plan goes through unenforced. `mode` is
 * null unless a budget hash was read.
 */
export function failOpenDecision(
  reason: FailOpenReason,
  detail?: string,
  mode: Mode | null = null,
  numbers: Pick<GateDecision, 'budgetUsd' | 'positionNotionalUsd' | 'projectedNotionalUsd' | 'reservedUsd'> = {},
): GateDecision {
  const decision: GateDecision = { allow: true, reason, enforced: false, failOpen: true, wouldBlock: false, mode };
  if (detail !== undefined) decision.detail = detail;
  return Object.assign(decision, numbers);
}

/** The `detail` a fail-open names for a thrown value: its message. */
export function errorDetail(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Not reachable by design (reads never reject); an unforeseen error still ends in a fail-open allow. */
export function unexpectedDecision(error: unknown): GateDecision {
  return failOpenDecision('redis_unavailable', `unexpected: ${errorDetail(error)}`);
}

/** `invalid_request`, naming the fields the schema rejects; a request that throws when read names none. */
export function invalidRequestDecision(req: unknown): GateDecision {
  try {
    // The schema names what is wrong; only invalid requests pay for it.
    const parsed = PermitRequest.safeParse(req);
    return failOpenDecision('invalid_request', parsed.success ? '(request)' : failedFields(parsed.error, '(request)'));
  } catch {
    return failOpenDecision('invalid_request', 'unreadable');
  }
}

/** `gate_disabled`: the emergency switch is on; Redis is not read. */
export function disabledDecision(): GateDecision {
  return { allow: true, reason: 'gate_disabled', enforced: false, failOpen: false, wouldBlock: false, mode: null };
}

/**
 * Whether the request alone says it only shrinks a position (`reduceOnly`, or a close action).
 * Such a plan is allowed without reading Redis: a budget never stops a position from shrinking.
 * Only the request's own `reduceOnly` counts: a flag inherited from a polluted prototype must
 * not turn an opening plan into a reduction.
 */
export function isClosingRequest(req: PermitRequest): boolean {
  return (Object.hasOwn(req, 'reduceOnly') && req.reduceOnly === true) || CLOSE_ACTIONS.has(req.action);
}

/** `reduce_only` for a request that says it closes or reduces; Redis is not read. */
export function closingDecision(): GateDecision {
  return { allow: true, reason: 'reduce_only', enforced: false, failOpen: false, wouldBlock: false, mode: null };
}

/**
 * Whether a move of `size` (> 0) in `direction` (+1 BUY, -1 SELL) from the signed `position`
 * leaves |position + delta| <= |position|. Judged by sign first: a BUY on a long or flat position
 * and a SELL on a short or flat one always grow it, however small or large the numbers, so float
 * rounding (`0.5 + 1e-17 === 0.5`) can never turn an add into a reduction. Against the position,
 * the move reduces exactly when `size <= 2 * |position|` (an overflow to Infinity still compares
 * right).
 */
function reduces(position: number, direction: 1 | -1, size: number): boolean {
  if (position === 0 || Math.sign(position) === direction) return false;
  return size <= 2 * Math.abs(position);
}

/**
 * Direction and projected size of a plan against the position in the budget hash.
 *
 * With `side` and `qty` the delta is +qty (BUY) or -qty (SELL) in base units; with `side` and
 * only `notionalUsd` the same test runs on the signed position notional. A plan without a side or
 * without a size counts as increasing, as does any plan from a flat position, any plan on the
 * side of the position, and a flip that ends larger than it started (long 1, SELL 3).
 *
 * The projected notional is |position + delta| * `position_price` (without a price: the
 * notional path if `notionalUsd` is given, else the current notional); on the notional path
 * |signed notional + signed delta|; without a side the current notional plus the plan's size;
 * without a size the current notional. Only the request's own properties are read.
 */
export function planEffect(req: PermitRequest, budget: BudgetHash): PlanEffect {
  const side = Object.hasOwn(req, 'side') ? req.side : undefined;
  const qty = Object.hasOwn(req, 'qty') ? req.qty : undefined;
  const notionalUsd = Object.hasOwn(req, 'notionalUsd') ? req.notionalUsd : undefined;
  // Only called for a known position (`decideBudget` judges an unknown one by `ownPlanEffect`).
  const amt = budget.position_amt ?? 0;
  const current = budget.position_notional_usd ?? 0;
  const signedNotional = amt < 0 ? -current : current;
  const sign = side === 'BUY' ? 1 : -1;

  if (side !== undefined && qty !== undefined) {
    const reducing = reduces(amt, sign, qty);
    const after = amt + sign * qty;
    if (budget.position_price !== undefined) {
      return { reducing, projectedNotionalUsd: Math.abs(after) * budget.position_price };
    }
    if (notionalUsd !== undefined) {
      return { reducing, projectedNotionalUsd: Math.abs(signedNotional + sign * notionalUsd) };
    }
    return { reducing, projectedNotionalUsd: current };
  }
  if (side !== undefined && notionalUsd !== undefined) {
    return { reducing: reduces(signedNotional, sign, notionalUsd), projectedNotionalUsd: Math.abs(signedNotional + sign * notionalUsd) };
  }
  if (notionalUsd !== undefined) return { reducing: false, projectedNotionalUsd: current + notionalUsd };
  if (qty !== undefined && budget.position_price !== undefined) {
    return { reducing: false, projectedNotionalUsd: current + qty * budget.position_price };
  }
  return { reducing: false, projectedNotionalUsd: current };
}

/**
 * A plan on a symbol whose position is unknown (`position_status` invalid, stale or unknown, or a
 * hash without position fields): nothing says it reduces, so it counts as increasing and is
 * judged by its own notional, `notionalUsd`, else qty * `position_price`, else 0.
 */
export function ownPlanEffect(req: PermitRequest, budget: BudgetHash): PlanEffect {
  if (req.notionalUsd !== undefined) return { reducing: false, projectedNotionalUsd: req.notionalUsd };
  if (req.qty !== undefined && budget.position_price !== undefined) return { reducing: false, projectedNotionalUsd: req.qty * budget.position_price };
  return { reducing: false, projectedNotionalUsd: 0 };
}

/** Whether the plan says how much it adds: `notionalUsd`, or `qty` with a price in the hash to value it. */
export function planIsSized(req: PermitRequest, budget: BudgetHash): boolean {
  if (Object.hasOwn(req, 'notionalUsd') && req.notionalUsd !== undefined) return true;
  return Object.hasOwn(req, 'qty') && req.qty !== undefined && budget.position_price !== undefined;
}

function effectiveMode(mode: Mode, policy: DecisionPolicy): Mode {
  return policy.forceShadow ? 'shadow' : mode;
}

/**
 * The decision for a valid request and a parsed, fresh budget hash: reducing plans are allowed;
 * an increasing plan would block on a violation younger than `violationWindowMs` or a projected
 * notional above `budget_usd` (that detail wins when both hold). Under `enforce` it is blocked,
 * under `shadow` allowed as `shadow_would_block`.
 *
 * `reservedUsd`, when given, is the headroom other plans in flight hold (their live
 * reservations): it counts against the budget as the decision script counts it, and the decision
 * shows it, with `projectedNotionalUsd` the projection plus it. Without it the decision shows no
 * reservations (the local cache, which never reserves).
 */
export function decideBudget(req: PermitRequest, budget: BudgetHash, nowMs: number, policy: DecisionPolicy, reservedUsd?: number): GateDecision {
  const mode = effectiveMode(budget.mode, policy);
  const enforce = mode === 'enforce';
  const position = knownPosition(budget);
  const effect = position === undefined ? ownPlanEffect(req, budget) : planEffect(req, budget);
  const numbers: Pick<GateDecision, 'budgetUsd' | 'positionNotionalUsd' | 'projectedNotionalUsd' | 'reservedUsd'> = {
    budgetUsd: budget.budget_usd,
    projectedNotionalUsd: effect.projectedNotionalUsd,
  };
  if (position !== undefined) numbers.positionNotionalUsd = position.notionalUsd;
  if (effect.reducing) {
    return { allow: true, reason: 'reduce_only', enforced: enforce, failOpen: false, wouldBlock: false, mode, ...numbers };
  }
  if (reservedUsd !== undefined) {
    numbers.projectedNotionalUsd = effect.projectedNotionalUsd + reservedUsd;
    numbers.reservedUsd = reservedUsd;
  }
  let detail: ViolationDetail | undefined;
  if ((numbers.projectedNotionalUsd as number) > budget.budget_usd) {
    detail = 'projected_over_budget';
  } else if (budget.last_violation_ts !== undefined && nowMs - budget.last_violation_ts * 1000 < policy.violationWindowMs) {
    detail = 'recent_violation';
  }
  // An unknown position is named in every decision it shaped, so that a Governor (and the
  // decision log) can tell a judgement by the plan's own notional from one against the position.
  const unknown = position === undefined ? `,${POSITION_UNKNOWN}` : '';
  if (detail === undefined) {
    // A plan whose size nothing gives (no notionalUsd, and no qty with a price in the hash to
    // value it, as on a flat symbol the fund never held) cannot be judged within budget: it goes
    // through as a counted fail-open instead of a silent allow.
    if (!planIsSized(req, budget)) return failOpenDecision('invalid_request', `plan_size_unknown${unknown}`, mode, numbers);
    const allowed: GateDecision = { allow: true, reason: 'within_budget', enforced: enforce, failOpen: false, wouldBlock: false, mode, ...numbers };
    if (position === undefined) allowed.detail = POSITION_UNKNOWN;
    return allowed;
  }
  if (enforce) {
    return { allow: false, reason: 'p28_budget_violation', enforced: true, failOpen: false, wouldBlock: true, mode, detail: `${detail}${unknown}`, ...numbers };
  }
  return { allow: true, reason: 'shadow_would_block', enforced: false, failOpen: false, wouldBlock: true, mode, detail: `${detail}${unknown}`, ...numbers };
}

/** The `detail` a decision carries when the symbol's position is unknown and the plan was judged by its own notional. */
export const POSITION_UNKNOWN = 'position_unknown';

/** The fields a failed parse names, without repeats, for a decision's `detail` (`whole` for the value itself). */
export function failedFields(error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey> }> }, whole: string): string {
  const names = new Set(error.issues.map((issue) => (issue.path.length > 0 ? issue.path.map(String).join('.') : whole)));
  return [...names].join(',');
}

/**
 * The decision for a valid, increasing-or-unknown request from the raw HGETALL result. Every
 * way the hash can fail to support a judgement fails open: empty (`no_budget_data`), unparsable
 * or an unknown `mode` (`invalid_budget_data`, detail names the fields), or a `timestamp` older
 * than `staleAfterMs` or more than `maxClockSkewMs` ahead (`stale_budget_data`).
 */
export function decideFromBudgetFields(
  req: PermitRequest,
  fields: Record<string, string>,
  nowMs: number,
  policy: DecisionPolicy,
  reservedUsd?: number,
): GateDecision {
  return decideFromParsedFields(req, fields, readBudgetHash(fields), nowMs, policy, reservedUsd);
}

/**
 * `decideFromBudgetFields` for fields already read with `readBudgetHash` (`budget`, undefined when
 * they failed): a replay judges many plans on one hash and parses it once.
 */
export function decideFromParsedFields(
  req: PermitRequest,
  fields: Record<string, string>,
  budget: BudgetHash | undefined,
  nowMs: number,
  policy: DecisionPolicy,
  reservedUsd?: number,
): GateDecision {
  if (budget === undefined) {
    if (Object.keys(fields).length === 0) return failOpenDecision('no_budget_data');
    // The schema names what is wrong; only invalid data pays for it.
    const parsed = BudgetHash.safeParse(fields);
    const detail = parsed.success ? '(hash)' : failedFields(parsed.error, '(hash)');
    const mode = Mode.safeParse(fields.mode);
    return failOpenDecision('invalid_budget_data', detail, mode.success ? effectiveMode(mode.data, policy) : null);
  }
  const mode = effectiveMode(budget.mode, policy);
  if (budget.symbol !== req.symbol) return failOpenDecision('invalid_budget_data', 'symbol', mode);
  const numbers: Pick<GateDecision, 'budgetUsd' | 'positionNotionalUsd'> = { budgetUsd: budget.budget_usd };
  if (budget.position_notional_usd !== undefined) numbers.positionNotionalUsd = budget.position_notional_usd;
  const freshness = budgetFreshness(budget.timestamp, nowMs, policy);
  if (freshness !== 'fresh') return failOpenDecision('stale_budget_data', freshness, mode, numbers);
  if (budget.last_violation_ts !== undefined && budget.last_violation_ts * 1000 - nowMs > policy.maxClockSkewMs) {
    return failOpenDecision('invalid_budget_data', 'last_violation_ts', mode, numbers);
  }
  return decideBudget(req, budget, nowMs, policy, reservedUsd);
}
