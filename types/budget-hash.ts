import { z } from 'zod';
import { Mode } from './mode';
import { SYMBOL_PATTERN, SymbolName } from './symbol';
import { inBounds, numericString, readDecimal, type NumberBounds } from './wire-number';

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
 * Whether the position fields can be trusted. `ok`: a fresh position (or a flat symbol). Every
 * other status means the position is unknown, and a missing position is never taken for a flat
 * one: `invalid` when the position's numbers were unusable (non-finite notional, negative price,
 * unreadable hash), `stale` when it is older than POSITION_STALE_SEC, `unknown` when the positions
 * feed disagrees with the portfolio state (fewer open positions or clearly less notional than the
 * portfolio counts). The budget still stands; `position_amt`, `position_notional_usd` and
 * `over_budget_usd` are then 0 and say nothing, and the gate judges an increasing plan by its own
 * notional.
 */
export const POSITION_STATUSES = ['ok', 'invalid', 'stale', 'unknown'] as const;
/** The statuses under which the position fields say nothing. */
export const UNKNOWN_POSITION_STATUSES: ReadonlySet<string> = new Set(['invalid', 'stale', 'unknown']);
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
  /**
   * Signed position size (base units); 0 for a flat symbol. The three position fields are absent
   * from hashes in the upstream Python service's 10-field shape: the position is then unknown.
   */
  position_amt: numericString(NUMBERS.position_amt).optional(),
  position_notional_usd: numericString(NUMBERS.position_notional_usd).optional(),
  /** max(0, position_notional_usd - budget_usd). */
  over_budget_usd: numericString(NUMBERS.over_budget_usd).optional(),
  /** Epoch seconds of the latest violation seen for this symbol; absent if none. */
  last_violation_ts: numericString(OPTIONAL_NUMBERS.last_violation_ts).optional(),
  /** The price the notional was measured at (mark, else entry); absent while flat without a price. */
  position_price: numericString(OPTIONAL_NUMBERS.position_price).optional(),
  /** Absent in hashes written before the field existed, which means `ok` when the position fields are there. */
  position_status: PositionStatus.optional(),
});

/**
 * The position a budget hash vouches for, or undefined when it is unknown: a `position_status`
 * other than `ok`, or no position fields at all (the upstream service's 10-field hash).
 */
export function knownPosition(budget: BudgetHash): { amt: number; notionalUsd: number } | undefined {
  if (budget.position_status !== undefined && budget.position_status !== 'ok') return undefined;
  if (budget.position_amt === undefined || budget.position_notional_usd === undefined) return undefined;
  return { amt: budget.position_amt, notionalUsd: budget.position_notional_usd };
}
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

/**
 * Every field the schema knows, in a fixed order: the gate reads exactly these (HMGET), so a
 * field the reader does not use, however large, never crosses the wire.
 */
export const BUDGET_HASH_FIELDS: readonly string[] = Object.freeze(Object.keys(BudgetHash.shape));

/**
 * The HMGET reply for `BUDGET_HASH_FIELDS` as a hash: the fields that exist, by name. Empty when
 * the key does not exist.
 */
export function budgetFieldsFromValues(values: ReadonlyArray<string | null>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i < BUDGET_HASH_FIELDS.length; i++) {
    const value = values[i];
    if (value !== null && value !== undefined) fields[BUDGET_HASH_FIELDS[i]!] = value;
  }
  return fields;
}

/** Only the hash's own fields count (`Object.hasOwn`): an inherited value is absent. */
function own(fields: Readonly<Record<string, unknown>>, name: string): unknown {
  return Object.hasOwn(fields, name) ? fields[name] : undefined;
}

/** A numeric field within its bounds, or NaN. */
function numberField(fields: Readonly<Record<string, unknown>>, name: string, bounds: NumberBounds): number {
  const raw = own(fields, name);
  const n = typeof raw === 'string' ? readDecimal(raw) : Number.NaN;
  return inBounds(n, bounds) ? n : Number.NaN;
}

/**
 * The gate's hot-path reader: the verdict and output of `BudgetHash.safeParse` for a hash that is
 * valid, without zod's per-field machinery (on the permit path the schema's cost is paid on a
 * cold CPU cache after every Redis round trip). Returns undefined when any field fails; run
 * `BudgetHash.safeParse` then for the issues. Both take their bounds from the same table, and a
 * property test holds them to the same verdict and output.
 */
export function readBudgetHash(fields: Readonly<Record<string, unknown>>): BudgetHash | undefined {
  const symbol = own(fields, 'symbol');
  const mode = own(fields, 'mode');
  if (typeof symbol !== 'string' || !SYMBOL_PATTERN.test(symbol)) return undefined;
  if (mode !== 'shadow' && mode !== 'enforce') return undefined;
  const positionStatus = own(fields, 'position_status');
  if (positionStatus !== undefined && positionStatus !== 'ok' && !UNKNOWN_POSITION_STATUSES.has(positionStatus as string)) return undefined;
  // One named read per field, into an object literal of one fixed shape: the permit path then
  // never goes through keyed property access. NaN marks a field that failed.
  const out: BudgetHash = {
    symbol,
    budget_usd: numberField(fields, 'budget_usd', NUMBERS.budget_usd),
    stress_factor: numberField(fields, 'stress_factor', NUMBERS.stress_factor),
    equity_usd: numberField(fields, 'equity_usd', NUMBERS.equity_usd),
    portfolio_heat: numberField(fields, 'portfolio_heat', NUMBERS.portfolio_heat),
    cluster_stress: numberField(fields, 'cluster_stress', NUMBERS.cluster_stress),
    vol_regime: numberField(fields, 'vol_regime', NUMBERS.vol_regime),
    mode,
    timestamp: numberField(fields, 'timestamp', NUMBERS.timestamp),
    base_risk_pct: numberField(fields, 'base_risk_pct', NUMBERS.base_risk_pct),
  };
  if (
    Number.isNaN(out.budget_usd + out.stress_factor + out.equity_usd + out.portfolio_heat + out.cluster_stress + out.vol_regime) ||
    Number.isNaN(out.timestamp + out.base_risk_pct)
  ) {
    return undefined;
  }
  // The position fields are absent from the upstream service's 10-field hashes: each one present
  // must be valid, an absent one leaves the position unknown.
  if (own(fields, 'position_amt') !== undefined) {
    out.position_amt = numberField(fields, 'position_amt', NUMBERS.position_amt);
    if (Number.isNaN(out.position_amt)) return undefined;
  }
  if (own(fields, 'position_notional_usd') !== undefined) {
    out.position_notional_usd = numberField(fields, 'position_notional_usd', NUMBERS.position_notional_usd);
    if (Number.isNaN(out.position_notional_usd)) return undefined;
  }
  if (own(fields, 'over_budget_usd') !== undefined) {
    out.over_budget_usd = numberField(fields, 'over_budget_usd', NUMBERS.over_budget_usd);
    if (Number.isNaN(out.over_budget_usd)) return undefined;
  }
  if (positionStatus !== undefined) out.position_status = positionStatus as PositionStatus;
  if (own(fields, 'last_violation_ts') !== undefined) {
    out.last_violation_ts = numberField(fields, 'last_violation_ts', OPTIONAL_NUMBERS.last_violation_ts);
    if (Number.isNaN(out.last_violation_ts)) return undefined;
  }
  if (own(fields, 'position_price') !== undefined) {
    out.position_price = numberField(fields, 'position_price', OPTIONAL_NUMBERS.position_price);
    if (Number.isNaN(out.position_price)) return undefined;
  }
  return out;
}
