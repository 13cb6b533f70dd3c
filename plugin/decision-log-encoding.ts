import { budgetFieldsFromValues } from '../types/budget-hash';
import { DECISION_LOG_FORMAT, decisionLogText, packDecisionLogValues, type DecisionLogVia } from '../types/decision-log-entry';
import { readPermitRequest, requestIdentity, type GateDecision, type PermitRequest } from '../types/permit';
import type { DecisionPolicy } from './decide';

/** The hash fields a decision was judged on, kept on the decision under this key until it is logged. */
const DECISION_INPUTS = Symbol('p28.decisionInputs');

/**
 * The hash fields a decision was judged on: by name (a cached hash), or as the values the decision
 * script appended to its reply (in `BUDGET_HASH_FIELDS` order, from `offset` on), which are named
 * only when the entry is packed, off the decision's path.
 */
export class ReplyInputs {
  constructor(
    readonly values: ReadonlyArray<string | null>,
    readonly offset: number,
  ) {}
}
type DecisionInputs = Record<string, string> | ReplyInputs;

type WithInputs = GateDecision & { [DECISION_INPUTS]?: DecisionInputs };

/** Records the budget hash fields `decision` was judged on, for its decision log entry (a weak reference). */
export function noteDecisionInputs(decision: GateDecision, inputs: DecisionInputs): void {
  // A hidden property, not a WeakMap: a WeakMap entry per decision costs the garbage collector
  // far more than the decision itself. Not enumerable, so the decision a caller sees is unchanged.
  Object.defineProperty(decision, DECISION_INPUTS, { value: inputs });
}

function inputFields(inputs: DecisionInputs | undefined): Record<string, string> | undefined {
  return inputs instanceof ReplyInputs ? budgetFieldsFromValues(inputs.values.slice(inputs.offset)) : inputs;
}

/**
 * One decision as the log took it, before it is packed: the request as judged (read into a new
 * object, so a caller that reuses its own changes nothing here), a copy of the decision, and the
 * inputs noted on it. Taking it is cheap and happens on the decision's path; packing it is not,
 * and happens after.
 */
export interface CapturedDecision {
  plan: PermitRequest | undefined;
  identity: { planId?: string; symbol?: string } | undefined;
  decision: GateDecision;
  inputs: DecisionInputs | undefined;
  tsMs: number;
  forceShadow: boolean;
}

/**
 * Takes one decision for the log (see `CapturedDecision`). Never throws on bad input. `plan` is the
 * request as the gate read it, when it did (an object of its own: not read again).
 */
export function captureDecision(req: unknown, d: GateDecision, tsMs: number, forceShadow: boolean, plan: PermitRequest | undefined = readPermitRequest(req)): CapturedDecision {
  return { plan, identity: plan === undefined ? requestIdentity(req) : undefined, decision: { ...d }, inputs: (d as WithInputs)[DECISION_INPUTS], tsMs, forceShadow };
}

const bit = (b: boolean | undefined): string => (b ? '1' : '0');
const numberText = (n: number | undefined): string => (n === undefined ? '' : String(n));
const fromHash = (h: Record<string, string> | undefined, name: string, fallback: number | undefined): string =>
  h !== undefined && h[name] !== undefined ? h[name]! : numberText(fallback);

/**
 * Packs one decision into the value of its decision log entry (`types/decision-log-entry.ts`:
 * every field, in order): the request as judged, the decision, the budget hash fields it was
 * judged on (`noteDecisionInputs`), and what is the same in every entry of a gate (its instance,
 * `via`, its three windows), joined once.
 */
export class DecisionLogEncoder {
  /** The gate's three windows, already joined: the same in every entry. */
  private readonly policyText: string;
  private readonly instanceText: string;

  constructor(
    instanceId: string,
    private readonly via: DecisionLogVia,
    policy: Readonly<DecisionPolicy>,
  ) {
    this.policyText = packDecisionLogValues([String(policy.staleAfterMs), String(policy.violationWindowMs), String(policy.maxClockSkewMs)]);
    this.instanceText = decisionLogText(instanceId);
  }

  /** The packed value of a captured decision. */
  pack(c: CapturedDecision): string {
    const { plan, identity, decision: d, tsMs, forceShadow } = c;
    const h = inputFields(c.inputs);
    return packDecisionLogValues([
      DECISION_LOG_FORMAT,
      String(tsMs),
      decisionLogText(plan?.planId ?? identity?.planId ?? ''),
      decisionLogText(plan?.symbol ?? identity?.symbol ?? ''),
      decisionLogText(plan?.action ?? ''),
      plan?.side ?? '',
      numberText(plan?.qty),
      numberText(plan?.notionalUsd),
      plan?.reduceOnly === undefined ? '' : bit(plan.reduceOnly),
      d.reason,
      d.detail === undefined ? '' : decisionLogText(String(d.detail).slice(0, 200)),
      bit(d.allow),
      bit(d.wouldBlock),
      bit(d.failOpen),
      bit(d.enforced),
      d.mode ?? '',
      d.source ?? 'none',
      this.instanceText,
      this.via,
      fromHash(h, 'budget_usd', d.budgetUsd),
      fromHash(h, 'position_notional_usd', d.positionNotionalUsd),
      numberText(d.projectedNotionalUsd),
      numberText((d as { reservedUsd?: number }).reservedUsd),
      h?.equity_usd ?? '',
      h?.portfolio_heat ?? '',
      h?.cluster_stress ?? '',
      h?.vol_regime ?? '',
      h?.base_risk_pct ?? '',
      h?.stress_factor ?? '',
      h?.mode ?? '',
      h?.timestamp ?? '',
      h?.position_amt ?? '',
      h?.position_price ?? '',
      decisionLogText(h?.position_status ?? ''),
      h?.last_violation_ts ?? '',
      this.policyText,
      bit(forceShadow),
    ]);
  }
}
