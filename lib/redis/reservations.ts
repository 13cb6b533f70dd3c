/**
 * Reservations of plans in flight, as stored: one field of the symbol's budget hash itself (so the
 * decision script checks and reserves in one atomic step on one key, which works on Redis Cluster),
 * `reservations`, a JSON object `{"<planId>": ["<amountUsd>", <expiresAtMs>]}` with the expiry on
 * the Redis clock. `lib/redis/lua/decide-plan-1.lua` writes it, `release-reservation-1.lua` removes
 * one plan from it, and the worker's budget writes never delete it.
 */
import { parseDecimal } from '../../types/wire-number';

export const RESERVATIONS_FIELD = 'reservations';

/** A stored budget hash split into its budget fields and its live reservations. */
export interface BudgetWithReservations {
  fields: Record<string, string>;
  /** USD held by reservations still live at `nowMs`; unreadable entries count as lapsed, as in the script. */
  reservedUsd: number;
  /** Number of live reservations. */
  reservations: number;
}

/**
 * The live reservations in a stored `reservations` field at `nowMs`: their sum and count. A field
 * that is not plain JSON (a `nan` the script's decoder reads, say) counts as none here until the
 * next decision on the symbol drops its unreadable entries and writes it again.
 */
export function liveReservations(stored: string | undefined, nowMs: number): { reservedUsd: number; reservations: number } {
  let reservedUsd = 0;
  let reservations = 0;
  if (stored === undefined) return { reservedUsd, reservations };
  let decoded: unknown;
  try {
    // The script's JSON decoder stops at a NUL byte; read what it reads.
    const nul = stored.indexOf('\0');
    decoded = JSON.parse(nul === -1 ? stored : stored.slice(0, nul));
  } catch {
    return { reservedUsd, reservations };
  }
  if (typeof decoded !== 'object' || decoded === null) return { reservedUsd, reservations };
  for (const entry of Object.values(decoded as Record<string, unknown>)) {
    if (!Array.isArray(entry)) continue;
    const amount = typeof entry[0] === 'string' ? parseDecimal(entry[0]) : Number.NaN;
    const expiresAt = typeof entry[1] === 'number' ? entry[1] : Number.NaN;
    if (Number.isFinite(amount) && amount >= 0 && Number.isFinite(expiresAt) && expiresAt > nowMs) {
      reservedUsd += amount;
      reservations += 1;
    }
  }
  return { reservedUsd, reservations };
}

/** Splits an HGETALL answer: the budget's own fields, and what its live reservations add up to. */
export function splitReservations(stored: Readonly<Record<string, string>>, nowMs: number): BudgetWithReservations {
  const { [RESERVATIONS_FIELD]: raw, ...fields } = stored;
  return { fields, ...liveReservations(raw, nowMs) };
}
