import { z } from 'zod';
import { SymbolName } from './symbol';

/** A trade plan asking for a permit. Sizes are unsigned; `side` gives the direction. */
export const PermitRequest = z.object({
  planId: z.string().min(1).max(200),
  symbol: SymbolName,
  action: z.string().min(1).max(64),
  side: z.enum(['BUY', 'SELL']).optional(),
  qty: z.number().positive().finite().optional(),
  notionalUsd: z.number().positive().finite().optional(),
  reduceOnly: z.boolean().optional(),
});
export type PermitRequest = z.infer<typeof PermitRequest>;

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
}

export interface PermitGate {
  readonly name: string;
  evaluate(req: PermitRequest): Promise<GateDecision>;
}
