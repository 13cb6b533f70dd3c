/**
 * The budget hash's known fields as the decision script last returned them, per symbol, so that
 * a gate with a decision log asks the script for them only when they changed (`FieldsWanted` in
 * `plan-script.ts`). The worker rewrites a hash every few seconds and a Governor asks about the
 * same symbols many times in between: the values then travel once per write, not once per decision.
 */

import { PLAN_REPLY_LENGTH, SAME_FIELDS } from './plan-script';

/** One symbol's values, in the script's order of known fields (null: missing). */
export interface KnownFields {
  readonly values: ReadonlyArray<string | null>;
  /**
   * The values joined as the script joins the stored ones (NUL between values, '' for a missing
   * one); undefined when the copy cannot be compared exactly (a value that is '' or holds a NUL
   * byte), and the script is then asked for every value.
   */
  readonly joined: string | undefined;
}

/** Symbols remembered at most: the oldest is forgotten first. About 1 KB each. */
export const KNOWN_FIELDS_MEMO_SYMBOLS = 10_000;

export class KnownFieldsMemo {
  private readonly bySymbol = new Map<string, KnownFields>();

  constructor(private readonly capacity: number = KNOWN_FIELDS_MEMO_SYMBOLS) {}

  get size(): number {
    return this.bySymbol.size;
  }

  /** The values last returned for `symbol`. */
  get(symbol: string): KnownFields | undefined {
    return this.bySymbol.get(symbol);
  }

  /**
   * The values a decision on `symbol` was judged on: those the script's reply carries (kept for
   * the next call), or `copy`, the copy the call was made with, when the script found them the
   * same; undefined when the reply has neither (a key that holds no hash).
   */
  fromReply(symbol: string, reply: ReadonlyArray<string | null>, copy: KnownFields | undefined): KnownFields | undefined {
    if (reply.length > PLAN_REPLY_LENGTH + 1) return this.remember(symbol, reply.slice(PLAN_REPLY_LENGTH));
    if (reply.length === PLAN_REPLY_LENGTH + 1 && reply[PLAN_REPLY_LENGTH] === SAME_FIELDS) return copy;
    return undefined;
  }

  /** Keeps `values` (the script's reply after its decision) as `symbol`'s, and returns them. */
  remember(symbol: string, values: ReadonlyArray<string | null>): KnownFields {
    const known: KnownFields = { values, joined: joinedCopy(values) };
    // Deleted first, so that the Map's order is the order of the last change: the oldest goes first.
    this.bySymbol.delete(symbol);
    this.bySymbol.set(symbol, known);
    if (this.bySymbol.size > this.capacity) this.bySymbol.delete(this.bySymbol.keys().next().value as string);
    return known;
  }
}

/** The values joined for the script's comparison, or undefined when it could not be exact. */
export function joinedCopy(values: ReadonlyArray<string | null>): string | undefined {
  for (const value of values) {
    if (value === '' || (value !== null && value.includes('\0'))) return undefined;
  }
  return values.map((value) => value ?? '').join('\0');
}
