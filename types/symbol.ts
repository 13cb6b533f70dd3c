import { z } from 'zod';

/**
 * Symbols become part of Redis key names, so they are restricted to upper-case letters and digits
 * (`BTCUSDT`, `1000PEPEUSDT`): nothing a caller sends can inject `*`, `:` or spaces into a key or a
 * SCAN pattern.
 */
export const SYMBOL_PATTERN = /^[A-Z0-9]{1,32}$/;
export const SymbolName = z.string().regex(SYMBOL_PATTERN, 'expected 1-32 upper-case letters or digits');
export type SymbolName = z.infer<typeof SymbolName>;

/** Cluster ids name `quantum:cluster:stress:<cluster_id>` keys; same reasoning, a little wider. */
export const CLUSTER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const ClusterId = z.string().regex(CLUSTER_ID_PATTERN, 'expected 1-64 letters, digits, "_" or "-"');

export function isValidSymbol(value: unknown): value is string {
  return typeof value === 'string' && SYMBOL_PATTERN.test(value);
}
