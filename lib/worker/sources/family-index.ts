import type { KeyFamily } from '../../redis/keys';

/** What SCAN found in a source's families: the symbols, and the keys that named none or named one in another case. */
export interface Discovery {
  /** Every symbol with a key in at least one family, each once, sorted. */
  symbols: string[];
  /** Keys whose last segment is no symbol in any case (`BTC-USDT`, `a b`): skipped and counted. */
  invalidKeys: string[];
  /** Keys that name a symbol in another case (`btcusdt`): read as that symbol, and named in a log line. */
  caseFoldedKeys: string[];
}

/**
 * The keys of one cycle's symbols across a source's key families (SCAN results), so that a symbol
 * is read only from the keys that exist, and a key written in lower case by another service is
 * read as its symbol. Where both `BTCUSDT` and `btcusdt` exist in one family, the exact one counts.
 */
export class FamilyIndex {
  /** symbol -> key per family index (undefined where the family has none). */
  private bySymbol = new Map<string, (string | undefined)[]>();

  constructor(private readonly families: readonly KeyFamily[]) {}

  /** Replaces the index with the keys SCAN found in each family (same order as the families). */
  take(keysByFamily: readonly (readonly string[])[]): Discovery {
    this.bySymbol = new Map();
    const invalidKeys: string[] = [];
    const caseFoldedKeys: string[] = [];
    this.families.forEach((family, f) => {
      for (const key of keysByFamily[f] ?? []) {
        const found = family.symbolOf(key);
        if (found === undefined) {
          invalidKeys.push(key);
          continue;
        }
        const slots = this.bySymbol.get(found.symbol) ?? new Array<string | undefined>(this.families.length).fill(undefined);
        if (found.caseFolded) caseFoldedKeys.push(key);
        // The exact-case key wins over a case-folded one of the same family.
        if (slots[f] === undefined || !found.caseFolded) slots[f] = key;
        this.bySymbol.set(found.symbol, slots);
      }
    });
    return { symbols: [...this.bySymbol.keys()].sort(), invalidKeys, caseFoldedKeys };
  }

  /** The keys of `symbol`, in family order, only those that exist. */
  keysOf(symbol: string): string[] {
    return (this.bySymbol.get(symbol) ?? []).filter((key): key is string => key !== undefined);
  }

  /** The family index of each key `keysOf(symbol)` returns. */
  familiesOf(symbol: string): number[] {
    const out: number[] = [];
    (this.bySymbol.get(symbol) ?? []).forEach((key, f) => {
      if (key !== undefined) out.push(f);
    });
    return out;
  }
}
