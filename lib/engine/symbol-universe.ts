/** Where the symbols that get a budget hash come from. */
export interface UniverseSources {
  /** Symbols with a position snapshot, flat ones included. */
  held: Iterable<string>;
  /** P28_SYMBOLS. */
  configured: Iterable<string>;
  /** Symbols with a market state hash (tracked by the market engine). */
  tracked: Iterable<string>;
}

export interface SymbolUniverse {
  /** The symbols that get a budget this cycle, each once, sorted. */
  symbols: string[];
  /** Symbols left out because the universe would exceed its cap, sorted. */
  overCap: string[];
}

/**
 * The symbol universe of a cycle: the union of held, configured and tracked symbols, capped at
 * `maxSymbols`. When the cap bites, held symbols go first (an open position must keep its budget),
 * then configured ones (an operator asked for them), then symbols the market engine merely tracks;
 * within each group the alphabetical order decides, so the same inputs always keep the same symbols.
 */
export function symbolUniverse(sources: UniverseSources, maxSymbols: number): SymbolUniverse {
  const kept = new Set<string>();
  const overCap = new Set<string>();
  for (const group of [sources.held, sources.configured, sources.tracked]) {
    for (const symbol of [...new Set(group)].sort()) {
      if (kept.has(symbol) || overCap.has(symbol)) continue;
      if (kept.size < maxSymbols) kept.add(symbol);
      else overCap.add(symbol);
    }
  }
  return { symbols: [...kept].sort(), overCap: [...overCap].sort() };
}
