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

/**
 * A symbol as a caller sends it: matched case-insensitively (`btcusdt` is `BTCUSDT`), then held to
 * `SYMBOL_PATTERN`. Requests, query strings and the CLI take symbols through this.
 */
export const RequestSymbol = z.string().toUpperCase().regex(SYMBOL_PATTERN, 'expected 1-32 letters or digits');

/** `raw` upper-cased when that makes a valid symbol, else undefined. */
export function normalizeSymbol(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  if (SYMBOL_PATTERN.test(raw)) return raw;
  if (raw.length > 32) return undefined;
  const upper = raw.toUpperCase();
  return SYMBOL_PATTERN.test(upper) ? upper : undefined;
}

export function isValidSymbol(value: unknown): value is string {
  return typeof value === 'string' && SYMBOL_PATTERN.test(value);
}
