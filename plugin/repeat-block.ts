import { RESERVATIONS_FIELD } from '../lib/redis/reservations';
import { BUDGET_HASH_FIELDS, budgetFieldsFromValues, readBudgetHash, type BudgetHash } from '../types/budget-hash';
import type { GateDecision, PermitRequest } from '../types/permit';
import { decideFromParsedFields, failOpenDecision, type DecisionPolicy } from './decide';
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
  /** Each remembered symbol, with the hash its last confirming read returned (parsed once). */
  private readonly symbols = new Map<string, ReadHash | undefined>();

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
    const hash = this.hashOf(plan.symbol, read.reply);
    const confirmed = confirmedBlock(plan, hash, parts.now(), parts.policy);
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

  /**
   * The hash of a confirming read. A symbol retried while over its budget reads the same values
   * again and again until the worker's next write: when every value equals the last read's, the
   * hash parsed then is the hash now (parsing is a function of the values alone), and only the
   * judgement, which depends on the time, is made again.
   */
  private hashOf(symbol: string, values: ReadonlyArray<string | null>): ReadHash {
    const last = this.symbols.get(symbol);
    if (last !== undefined && sameValues(last.values, values)) return last;
    const hash = readHash(values);
    // Kept only for a symbol still remembered (not one forgotten while its read was out).
    if (this.symbols.has(symbol)) this.symbols.set(symbol, hash);
    return hash;
  }

  /** Remembers a block read from Redis; any other decision from Redis forgets the symbol. */
  note(symbol: string, decision: GateDecision): void {
    if (decision.wouldBlock) {
      if (this.symbols.size >= this.limit && !this.symbols.has(symbol)) this.symbols.clear();
      if (!this.symbols.has(symbol)) this.symbols.set(symbol, undefined);
    } else {
      this.symbols.delete(symbol);
    }
  }

  get size(): number {
    return this.symbols.size;
  }
}

/** A confirming read: its values (in the order of `REPEAT_BLOCK_FIELDS`), named, and parsed. */
export interface ReadHash {
  readonly values: ReadonlyArray<string | null>;
  readonly fields: Record<string, string>;
  /** `readBudgetHash(fields)`: undefined when the fields fail the schema. */
  readonly budget: BudgetHash | undefined;
}

function sameValues(a: ReadonlyArray<string | null>, b: ReadonlyArray<string | null>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The `ReadHash` of a confirming read's values. */
export function readHash(values: ReadonlyArray<string | null>): ReadHash {
  const fields = budgetFieldsFromValues(values);
  return { values, fields, budget: readBudgetHash(fields) };
}

/**
 * The decision of the confirming HMGET, when it is a block the script would give word for word;
 * undefined when the script must judge. `fields` are the hash's known fields (the decision log's
 * inputs).
 */
export function confirmedBlock(plan: PermitRequest, hash: ReadHash, nowMs: number, policy: DecisionPolicy): { decision: GateDecision; fields: Record<string, string> } | undefined {
  const reservations = hash.values[BUDGET_HASH_FIELDS.length];
  if (reservations !== null && reservations !== undefined) return undefined;
  // No reservations: the script counts 0 USD of plans in flight, and shows it.
  const decision = decideFromParsedFields(plan, hash.fields, hash.budget, nowMs, policy, 0);
  return decision.wouldBlock ? { decision, fields: hash.fields } : undefined;
}
