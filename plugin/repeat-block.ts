import { RESERVATIONS_FIELD } from '../lib/redis/reservations';
import { BUDGET_HASH_FIELDS, budgetFieldsFromValues } from '../types/budget-hash';
import type { GateDecision, PermitRequest } from '../types/permit';
import { decideFromBudgetFields, failOpenDecision, type DecisionPolicy } from './decide';
import type { DecisionLogHook } from './decision-log-hook';
import type { BudgetRead, GuardedRead } from './guarded-read';

/**
 * A block read with HMGET instead of the decision script, for a symbol whose last decision was a
 * block.
 *
 * The decision script (`decide-plan-1.lua`) judges and reserves in one atomic step, and every
 * allowed increasing plan needs it. A blocked plan reserves nothing and writes nothing, so HMGET
 * of the same fields, judged by the same rule in-process (`plugin/decide.ts`, held to the script by
 * the conformance vectors), gives the same decision for a fraction of the script's cost on the
 * Redis server. Over-budget symbols are where a Governor retries: their plans are read this way.
 *
 * The read confirms a block only when nothing the script alone could know is involved: the hash
 * holds no reservations (whose expiry is judged on Redis's clock; a symbol over its budget
 * makes none, and the last one lapses or is released within `reservationTtlMs`). Anything else
 * (an allow, which must reserve, a fail-open, reservations) goes to the script in a second round
 * trip, and the symbol is forgotten until its next block: a symbol that stops blocking costs that
 * one extra round trip once.
 */

/** The fields of the confirming HMGET: the schema's, in its order, then `reservations`. */
export const REPEAT_BLOCK_FIELDS: readonly string[] = Object.freeze([...BUDGET_HASH_FIELDS, RESERVATIONS_FIELD]);

/** Symbols remembered at most; past it the memory starts again (each costs a script call once more). */
export const REPEAT_BLOCK_SYMBOLS = 10_000;

/** What the repeated-block path needs of its gate. */
export interface RepeatBlockParts {
  reads: GuardedRead;
  now: () => number;
  policy: DecisionPolicy;
  decisionLog: DecisionLogHook | undefined;
  /** The gate's answer when Redis cannot be read (the local cache may still know the hash). */
  unreachable: (plan: PermitRequest, failure: GateDecision) => GateDecision;
  /** The gate's script path, for whatever the HMGET does not confirm. */
  script: (plan: PermitRequest) => GateDecision | Promise<GateDecision>;
}

/**
 * The symbols whose last decision read from Redis was a block (enforced or would-be), and the
 * decision of the next plan on one of them: HMGET, judged in-process, confirms the block in one
 * cheap round trip; anything else goes to the script after all.
 */
export class RepeatBlocks {
  private readonly symbols = new Set<string>();

  constructor(
    private readonly parts: RepeatBlockParts,
    private readonly limit = REPEAT_BLOCK_SYMBOLS,
  ) {}

  decide(plan: PermitRequest): GateDecision | Promise<GateDecision> {
    const read = this.parts.reads.readFields(plan, REPEAT_BLOCK_FIELDS);
    return read instanceof Promise ? read.then((settled) => this.judge(plan, settled)) : this.judge(plan, read);
  }

  private judge(plan: PermitRequest, read: BudgetRead): GateDecision | Promise<GateDecision> {
    const parts = this.parts;
    if (!read.ok) return parts.unreachable(plan, failOpenDecision(read.reason, read.detail));
    const confirmed = confirmedBlock(plan, read.reply, parts.now(), parts.policy);
    if (confirmed === undefined) {
      this.symbols.delete(plan.symbol);
      return parts.script(plan);
    }
    confirmed.decision.source = 'redis';
    parts.decisionLog?.noteFields(confirmed.decision, confirmed.fields);
    return confirmed.decision;
  }

  has(symbol: string): boolean {
    return this.symbols.has(symbol);
  }

  /** Remembers a block read from Redis; any other decision from Redis forgets the symbol. */
  note(symbol: string, decision: GateDecision): void {
    if (decision.wouldBlock) {
      if (this.symbols.size >= this.limit && !this.symbols.has(symbol)) this.symbols.clear();
      this.symbols.add(symbol);
    } else {
      this.symbols.delete(symbol);
    }
  }

  get size(): number {
    return this.symbols.size;
  }
}

/**
 * The decision of the confirming HMGET (`values` in the order of `REPEAT_BLOCK_FIELDS`), when it is
 * a block the script would give word for word; undefined when the script must judge. `fields`
 * receives the hash's known fields (the decision log's inputs).
 */
export function confirmedBlock(
  plan: PermitRequest,
  values: ReadonlyArray<string | null>,
  nowMs: number,
  policy: DecisionPolicy,
): { decision: GateDecision; fields: Record<string, string> } | undefined {
  if (values[BUDGET_HASH_FIELDS.length] !== null && values[BUDGET_HASH_FIELDS.length] !== undefined) return undefined;
  const fields = budgetFieldsFromValues(values);
  // No reservations: the script counts 0 USD of plans in flight, and shows it.
  const decision = decideFromBudgetFields(plan, fields, nowMs, policy, 0);
  return decision.wouldBlock ? { decision, fields } : undefined;
}
