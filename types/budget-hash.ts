import { z } from 'zod';
import { Mode } from './mode';
import { SymbolName } from './symbol';
import { epochSecondsString, numericString } from './wire-number';

/**
 * `quantum:portfolio:budget:<SYMBOL>`: written by the worker (with a TTL), read by the gate and by
 * the existing Python Governor. Every field is a string on the wire; this schema is the single
 * definition both sides go through, so the writer and the reader cannot drift apart.
 *
 * The gate decides from this one hash in one round trip: mode, freshness, budget, the position
 * and its latest violation are all here.
 */
export const BudgetHash = z.object({
  symbol: SymbolName,
  budget_usd: numericString({ min: 0 }),
  stress_factor: numericString({ min: 0, max: 1 }),
  equity_usd: numericString({ min: 0 }),
  portfolio_heat: numericString({ min: 0, max: 1 }),
  cluster_stress: numericString({ min: 0, max: 1 }),
  vol_regime: numericString({ min: 0, max: 1 }),
  mode: Mode,
  /** Epoch seconds of the cycle that computed this budget. */
  timestamp: epochSecondsString,
  base_risk_pct: numericString({ min: 0, max: 1, exclusiveMin: true }),
  /** Signed position size (base units); 0 for a flat symbol. */
  position_amt: numericString(),
  position_notional_usd: numericString({ min: 0 }),
  /** max(0, position_notional_usd - budget_usd). */
  over_budget_usd: numericString({ min: 0 }),
  /** Epoch seconds of the latest violation seen for this symbol; absent if none. */
  last_violation_ts: epochSecondsString.optional(),
  /** The price the notional was measured at (mark, else entry); absent while flat without a price. */
  position_price: numericString({ min: 0, exclusiveMin: true }).optional(),
});
/** A parsed budget hash: numbers, not strings. */
export type BudgetHash = z.output<typeof BudgetHash>;
/** The budget hash as stored in Redis: every field a string. */
export type BudgetHashFields = z.input<typeof BudgetHash>;

/** Renders a budget record as the string fields written to Redis (optional fields left out). */
export function encodeBudgetHash(record: BudgetHash): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(record)) {
    if (value === undefined) continue;
    if (typeof value === 'number' && !Number.isFinite(value)) {
      // Never let a NaN or Infinity reach Redis: that is a programming error upstream.
      throw new RangeError(`budget hash field ${name} is not finite: ${value}`);
    }
    fields[name] = String(value);
  }
  return fields;
}
