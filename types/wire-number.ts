import { z } from 'zod';

/**
 * Redis hashes carry every value as a string. These schemas turn such a string into a finite
 * number and reject everything `Number()` would quietly accept or mangle: empty and blank strings
 * (`Number('') === 0`), hex and binary literals, `NaN`, `Infinity`, and trailing garbage.
 */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export interface NumberBounds {
  min?: number;
  max?: number;
  /** Reject the bound itself (for example equity must be > 0, not >= 0). */
  exclusiveMin?: boolean;
}

/** A received value as an error message quotes it: cut short, so a huge field cannot make a huge message. */
export function quoted(raw: string): string {
  return raw.length > 40 ? `${JSON.stringify(raw.slice(0, 40))}... (${raw.length} chars)` : JSON.stringify(raw);
}

function boundsText({ min, max, exclusiveMin }: NumberBounds): string {
  if (min !== undefined && max !== undefined) return `a number in ${exclusiveMin ? '(' : '['}${min},${max}]`;
  if (min !== undefined) return `a number ${exclusiveMin ? '>' : '>='} ${min}`;
  if (max !== undefined) return `a number <= ${max}`;
  return 'a finite number';
}

/** Whether `n` is finite and inside the bounds. */
export function inBounds(n: number, bounds: NumberBounds = {}): boolean {
  if (!Number.isFinite(n)) return false;
  const { min, max, exclusiveMin } = bounds;
  if (min !== undefined && (exclusiveMin ? n <= min : n < min)) return false;
  if (max !== undefined && n > max) return false;
  return true;
}

/**
 * Longest decimal string read, blanks included. A number as any service writes it is under 30
 * characters; the bound keeps a corrupted multi-megabyte field from costing a regex scan (and a
 * permit decision its time limit).
 */
export const MAX_DECIMAL_CHARS = 64;

/**
 * The number a decimal string stands for (surrounding blanks allowed), or NaN if it is not one
 * or is longer than `MAX_DECIMAL_CHARS`.
 */
export function parseDecimal(raw: string): number {
  if (raw.length > MAX_DECIMAL_CHARS) return Number.NaN;
  const text = raw.trim();
  return DECIMAL.test(text) ? Number(text) : Number.NaN;
}

const isDigit = (code: number): boolean => code >= 48 && code <= 57;

/**
 * `parseDecimal` for the permit path: the same result for every string (a property test holds
 * them equal), found by one scan of the characters instead of a trim and a regex. Only a string
 * the scan cannot take as it stands (surrounding blanks, or not a number at all) goes the slow way.
 */
export function readDecimal(raw: string): number {
  const length = raw.length;
  if (length === 0 || length > MAX_DECIMAL_CHARS) return Number.NaN;
  let i = 0;
  let code = raw.charCodeAt(0);
  if (code === 43 || code === 45) i = 1; // + -
  let digits = 0;
  while (i < length && isDigit(raw.charCodeAt(i))) {
    i += 1;
    digits += 1;
  }
  if (i < length && raw.charCodeAt(i) === 46) {
    i += 1;
    while (i < length && isDigit(raw.charCodeAt(i))) {
      i += 1;
      digits += 1;
    }
  }
  if (digits === 0) return parseDecimal(raw);
  code = raw.charCodeAt(i);
  if (code === 101 || code === 69) {
    i += 1;
    code = raw.charCodeAt(i);
    if (code === 43 || code === 45) i += 1;
    const start = i;
    while (i < length && isDigit(raw.charCodeAt(i))) i += 1;
    if (i === start) return parseDecimal(raw);
  }
  return i === length ? Number(raw) : parseDecimal(raw);
}

/** A decimal string parsed into a finite number within `bounds`. */
export function numericString(bounds: NumberBounds = {}) {
  const expected = `expected ${boundsText(bounds)}`;
  return z.string().transform((raw, ctx) => {
    const n = parseDecimal(raw);
    if (!inBounds(n, bounds)) {
      ctx.addIssue({ code: 'custom', message: `${expected}, got ${quoted(raw)}` });
      return z.NEVER;
    }
    return n;
  });
}

/** A string holding a whole number (ports, seconds, epoch timestamps) within `bounds`. */
export function integerString(bounds: NumberBounds = {}) {
  const expected = `expected a whole ${boundsText(bounds).replace(/^a /, '')}`;
  return z.string().transform((raw, ctx) => {
    const text = raw.trim();
    const n = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || !inBounds(n, bounds)) {
      ctx.addIssue({ code: 'custom', message: `${expected}, got ${quoted(raw)}` });
      return z.NEVER;
    }
    return n;
  });
}

/** Epoch seconds as written by the services of the trading system (fractions allowed). */
export const epochSecondsString = numericString({ min: 0 });

/** Renders the issues of a failed parse as one readable line per issue: `field: message`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(value)';
    return `${path}: ${issue.message}`;
  });
}
