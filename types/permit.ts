import { z } from 'zod';
import { RequestSymbol, normalizeSymbol } from './symbol';

/** A trade plan asking for a permit. Sizes are unsigned; `side` gives the direction. */
export const PLAN_ID_MAX = 200;
const ACTION_MAX = 64;

export const PermitRequest = z.object({
  planId: z.string().min(1).max(PLAN_ID_MAX),
  /** Matched case-insensitively: `btcusdt` is `BTCUSDT`. */
  symbol: RequestSymbol,
  action: z.string().min(1).max(ACTION_MAX),
  side: z.enum(['BUY', 'SELL']).optional(),
  qty: z.number().positive().finite().optional(),
  notionalUsd: z.number().positive().finite().optional(),
  reduceOnly: z.boolean().optional(),
});
export type PermitRequest = z.infer<typeof PermitRequest>;

const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length >= 1 && v.length <= max;
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** The value of `req`'s own property `name`; an inherited one counts as absent. */
function own(req: object, name: string): unknown {
  return Object.hasOwn(req, name) ? (req as Record<string, unknown>)[name] : undefined;
}

/**
 * planId and symbol of any value, cut short, for logs and log entries about requests that may be
 * malformed: only own string properties are taken, and a value that throws when read gives nothing.
 */
export function requestIdentity(req: unknown): { planId?: string; symbol?: string } {
  if (typeof req !== 'object' || req === null) return {};
  try {
    const planId = own(req, 'planId');
    const symbol = own(req, 'symbol');
    return {
      planId: typeof planId === 'string' ? planId.slice(0, PLAN_ID_MAX) : undefined,
      symbol: typeof symbol === 'string' ? symbol.slice(0, 40) : undefined,
    };
  } catch {
    return {};
  }
}

/**
 * The gate's hot-path check of a request: the verdict and output of `PermitRequest.safeParse`
 * for a valid request, without zod's machinery. Returns undefined when anything is off; run
 * `PermitRequest.safeParse` then for the issues. A property test holds the two to the same
 * verdict and output.
 *
 * Only the request's own properties are read (`Object.hasOwn`): a host whose
 * `Object.prototype` carries `reduceOnly` or `side` must not change what a plan says. A request
 * that throws when read (a getter, a Proxy trap) gives undefined too.
 */
export function readPermitRequest(req: unknown): PermitRequest | undefined {
  if (typeof req !== 'object' || req === null || Array.isArray(req)) return undefined;
  try {
    return readOwnFields(req);
  } catch {
    return undefined;
  }
}

function readOwnFields(req: object): PermitRequest | undefined {
  const planId = own(req, 'planId');
  const action = own(req, 'action');
  const symbol = normalizeSymbol(own(req, 'symbol'));
  if (!isText(planId, PLAN_ID_MAX) || !isText(action, ACTION_MAX)) return undefined;
  if (symbol === undefined) return undefined;
  const out: PermitRequest = { planId, symbol, action };
  const side = own(req, 'side');
  if (side !== undefined) {
    if (side !== 'BUY' && side !== 'SELL') return undefined;
    out.side = side;
  }
  const qty = own(req, 'qty');
  if (qty !== undefined) {
    if (!isSize(qty)) return undefined;
    out.qty = qty;
  }
  const notionalUsd = own(req, 'notionalUsd');
  if (notionalUsd !== undefined) {
    if (!isSize(notionalUsd)) return undefined;
    out.notionalUsd = notionalUsd;
  }
  const reduceOnly = own(req, 'reduceOnly');
  if (reduceOnly !== undefined) {
    if (typeof reduceOnly !== 'boolean') return undefined;
    out.reduceOnly = reduceOnly;
  }
  return out;
}

/** Actions that only ever close or shrink a position. */
export const CLOSE_ACTIONS: ReadonlySet<string> = new Set([
  'FULL_CLOSE_PROPOSED',
  'PARTIAL_25',
  'PARTIAL_50',
  'PARTIAL_75',
  'CLOSE',
  'REDUCE',
]);

export const BLOCK_REASONS = ['p28_budget_violation'] as const;
export const ALLOW_REASONS = ['within_budget', 'reduce_only', 'shadow_would_block', 'gate_disabled'] as const;
export const FAIL_OPEN_REASONS = [
  'no_budget_data',
  'stale_budget_data',
  'invalid_budget_data',
  'invalid_request',
  'redis_unavailable',
  'timeout',
  'breaker_open',
] as const;

/** The closed set of reasons a gate decision can carry (exact strings, part of the contract). */
export const GateReason = z.enum([...BLOCK_REASONS, ...ALLOW_REASONS, ...FAIL_OPEN_REASONS]);
export type GateReason = z.infer<typeof GateReason>;
export type FailOpenReason = (typeof FAIL_OPEN_REASONS)[number];

/** Why `p28_budget_violation` fired. */
export type ViolationDetail = 'recent_violation' | 'projected_over_budget';

export interface GateDecision {
  allow: boolean;
  reason: GateReason;
  /** True when the decision was taken under `mode=enforce` (a block, or an allow that would hold). */
  enforced: boolean;
  /** True when the gate could not judge and let the plan through. */
  failOpen: boolean;
  /** True when the plan breaks the budget, whether or not it was blocked. */
  wouldBlock: boolean;
  /** The mode the decision was taken under; null when no budget hash was read. */
  mode: 'shadow' | 'enforce' | null;
  detail?: string;
  budgetUsd?: number;
  positionNotionalUsd?: number;
  projectedNotionalUsd?: number;
  /**
   * Live reservations of other plans on the symbol (USD) that this decision counted: they are part
   * of `projectedNotionalUsd`. Absent when no budget hash was judged.
   */
  reservedUsd?: number;
  /**
   * Where the budget hash came from: `redis` (read for this decision), `cache` (the gate's local
   * cache) or `none` (no hash was used). The budget gate sets it on every decision it returns.
   */
  source?: HashSource;
}

/** Where a decision's budget hash came from. */
export type HashSource = 'redis' | 'cache' | 'none';

export interface PermitGate {
  readonly name: string;
  evaluate(req: PermitRequest): Promise<GateDecision>;
  /**
   * Optional: frees what an allowed plan holds in this gate (a reservation of headroom) once the
   * plan will not be executed or has been filled. `PermitPipeline` calls it on the gates that
   * allowed a plan a later gate blocked. Never rejects; true when something was freed.
   */
  release?(planId: string, symbol: string): Promise<boolean>;
}
