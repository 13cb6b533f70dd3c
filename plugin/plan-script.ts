import type { Mode } from '../types/mode';
import { FAIL_OPEN_REASONS, type GateDecision, type GateReason, type PermitRequest } from '../types/permit';
import type { DecisionPolicy } from './decide';

/**
 * The Node side of `lib/redis/lua/decide-plan-1.lua`, the one script that judges a plan against
 * its budget hash and reserves an allowed increase in the same atomic step. Every gate (this
 * plugin, the worker's HTTP API, the Python package) calls the same script, so they cannot judge
 * differently; this module only builds its arguments and reads its reply.
 */

/** Fields of the script's reply before the appended hash values (option `localCache`). */
export const PLAN_REPLY_LENGTH = 7;
/** The value the script appends instead of the hash's values when they equal the caller's copy. */
export const SAME_FIELDS = '=';

/**
 * What a call asks of the hash's known fields: none, all of them, or (a string: the caller's copy
 * joined as `KnownFieldsMemo` joins it) all of them only when they differ from that copy.
 */
export type FieldsWanted = boolean | string;

const FAIL_OPEN: ReadonlySet<string> = new Set(FAIL_OPEN_REASONS);

/** `String(n)` prints the shortest text that reads back as the same double: the script parses exactly `n`. */
function text(value: number | undefined): string {
  return value === undefined ? '' : String(value);
}

/**
 * ARGV of the script for a valid plan that is not a close by itself. `reservationTtlMs` 0 makes
 * no reservation; `fields` asks for the hash's known fields after the decision (`FieldsWanted`).
 */
export function planScriptArgs(plan: PermitRequest, nowMs: number, policy: DecisionPolicy, reservationTtlMs: number, fields: FieldsWanted): string[] {
  const args = [
    plan.planId,
    plan.symbol,
    Object.hasOwn(plan, 'side') && plan.side !== undefined ? plan.side : '',
    Object.hasOwn(plan, 'qty') ? text(plan.qty) : '',
    Object.hasOwn(plan, 'notionalUsd') ? text(plan.notionalUsd) : '',
    String(nowMs),
    String(policy.staleAfterMs),
    String(policy.violationWindowMs),
    String(policy.maxClockSkewMs),
    policy.forceShadow ? '1' : '0',
    String(reservationTtlMs),
    typeof fields === 'string' ? '2' : fields ? '1' : '0',
  ];
  if (typeof fields === 'string') args.push(fields);
  return args;
}

function number(raw: string | undefined): number | undefined {
  return raw === undefined || raw === '' ? undefined : Number(raw);
}

/**
 * The `GateDecision` of the script's reply. The flags follow from the reason and the mode: a block
 * is enforced, a fail-open is never enforced, and an allow is enforced under `mode=enforce`.
 */
export function decisionFromPlanReply(reply: ReadonlyArray<string | null>): GateDecision {
  const reason = reply[0] as GateReason;
  const mode = reply[2] === 'shadow' || reply[2] === 'enforce' ? (reply[2] as Mode) : null;
  const failOpen = FAIL_OPEN.has(reason);
  const blocked = reason === 'p28_budget_violation';
  const decision: GateDecision = {
    allow: !blocked,
    reason,
    enforced: blocked || (!failOpen && mode === 'enforce'),
    failOpen,
    wouldBlock: blocked || reason === 'shadow_would_block',
    mode,
  };
  if (reply[1]) decision.detail = reply[1];
  const budgetUsd = number(reply[3] ?? undefined);
  const positionNotionalUsd = number(reply[4] ?? undefined);
  const projectedNotionalUsd = number(reply[5] ?? undefined);
  const reservedUsd = number(reply[6] ?? undefined);
  if (budgetUsd !== undefined) decision.budgetUsd = budgetUsd;
  if (positionNotionalUsd !== undefined) decision.positionNotionalUsd = positionNotionalUsd;
  if (projectedNotionalUsd !== undefined) decision.projectedNotionalUsd = projectedNotionalUsd;
  if (reservedUsd !== undefined) decision.reservedUsd = reservedUsd;
  return decision;
}
