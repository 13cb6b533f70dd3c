import { z } from 'zod';
import { Mode } from './mode';
import { SYMBOL_PATTERN, SymbolName } from './symbol';
import { inBounds, numericString, parseDecimal, type NumberBounds } from './wire-number';

/**
 * `quantum:portfolio:budget:<SYMBOL>`: written by the worker (with a TTL), read by the gate and by
 * the existing Python Governor. Every field is a string on the wire; this schema is the single
 * definition both sides go through, so the writer and the reader cannot drift apart.
 *
 * The gate decides from this one hash in one round trip: mode, freshness, budget, the position
 * and its latest violation are all here.
 */
/**
 * Bounds of every numeric field. The zod schema below and the gate's fast reader
 * (`readBudgetHash`) both take them from here.
 */
const NUMBERS = {
  budget_usd: { min: 0 },
  stress_factor: { min: 0, max: 1 },
  equity_usd: { min: 0 },
  portfolio_heat: { min: 0, max: 1 },
  cluster_stress: { min: 0, max: 1 },
  vol_regime: { min: 0, max: 1 },
  timestamp: { min: 0 },
  base_risk_pct: { min: 0, max: 1, exclusiveMin: true },
  position_amt: {},
  position_notional_usd: { min: 0 },
  over_budget_usd: { min: 0 },
} as const satisfies Record<string, NumberBounds>;
const OPTIONAL_NUMBERS = {
  last_violation_ts: { min: 0 },
  position_price: { min: 0, exclusiveMin: true },
} as const satisfies Record<string, NumberBounds>;

/**
 * Whether the position fields can be trusted: `invalid` when the snapshot's numbers were unusable
 * (non-finite notional, negative price, unreadable hash). The budget still stands; `position_amt`,
 * `position_notional_usd` and `over_budget_usd` are then 0 and say nothing, and the gate judges an
 * increasing plan by its own notional.
 */
export const POSITION_STATUSES = ['ok', 'invalid'] as const;
export const PositionStatus = z.enum(POSITION_STATUSES);
export type PositionStatus = z.infer<typeof PositionStatus>;

export const BudgetHash = z.object({
  symbol: SymbolName,
  budget_usd: numericString(NUMBERS.budget_usd),
  stress_factor: numericString(NUMBERS.stress_factor),
  equity_usd: numericString(NUMBERS.equity_usd),
  portfolio_heat: numericString(NUMBERS.portfolio_heat),
  cluster_stress: numericString(NUMBERS.cluster_stress),
  vol_regime: numericString(NUMBERS.vol_regime),
  mode: Mode,
  /** Epoch seconds of the cycle that computed this budget. */
  timestamp: numericString(NUMBERS.timestamp),
  base_risk_pct: numericString(NUMBERS.base_risk_pct),
  /** Signed position size (base units); 0 for a flat symbol. */
  position_amt: numericString(NUMBERS.position_amt),
  position_notional_usd: numericString(NUMBERS.position_notional_usd),
  /** max(0, position_notional_usd - budget_usd). */
  over_budget_usd: numericString(NUMBERS.over_budget_usd),
  /** Epoch seconds of the latest violation seen for this symbol; absent if none. */
  last_violation_ts: numericString(OPTIONAL_NUMBERS.last_violation_ts).optional(),
  /** The price the notional was measured at (mark, else entry); absent while flat without a price. */
  position_price: numericString(OPTIONAL_NUMBERS.position_price).optional(),
  /** Absent in hashes written before the field existed, which means `ok`. */
  position_status: PositionStatus.optional(),
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

function readNumber(raw: unknown): number {
  return typeof raw === 'string' ? parseDecimal(raw) : Number.NaN;
}

/**
 * The gate's hot-path reader: the verdict and output of `BudgetHash.safeParse` for a hash that is
 * valid, without zod's per-field machinery (on the permit path the schema's cost is paid on a
 * cold CPU cache after every Redis round trip). Returns undefined when any field fails; run
 * `BudgetHash.safeParse` then for the issues. Both take their bounds from the same table, and a
 * property test holds them to the same verdict and output.
 */
export function readBudgetHash(fields: Readonly<Record<string, unknown>>): BudgetHash | undefined {
  const { symbol, mode, position_status: positionStatus } = fields;
  if (typeof symbol !== 'string' || !SYMBOL_PATTERN.test(symbol)) return undefined;
  if (mode !== 'shadow' && mode !== 'enforce') return undefined;
  const out: Record<string, unknown> = { symbol, mode };
  if (positionStatus !== undefined) {
    if (positionStatus !== 'ok' && positionStatus !== 'invalid') return undefined;
    out.position_status = positionStatus;
  }
  for (const name in NUMBERS) {
    const bounds: NumberBounds = NUMBERS[name as keyof typeof NUMBERS];
    const n = readNumber(fields[name]);
    if (!inBounds(n, bounds)) return undefined;
    out[name] = n;
  }
  for (const name in OPTIONAL_NUMBERS) {
    const raw = fields[name];
    if (raw === undefined) continue;
    const bounds: NumberBounds = OPTIONAL_NUMBERS[name as keyof typeof OPTIONAL_NUMBERS];
    const n = readNumber(raw);
    if (!inBounds(n, bounds)) return undefined;
    out[name] = n;
  }
  return out as BudgetHash;
}
