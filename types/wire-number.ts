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

/** The number a decimal string stands for (surrounding blanks allowed), or NaN if it is not one. */
export function parseDecimal(raw: string): number {
  const text = raw.trim();
  return DECIMAL.test(text) ? Number(text) : Number.NaN;
}

/** A decimal string parsed into a finite number within `bounds`. */
export function numericString(bounds: NumberBounds = {}) {
  const expected = `expected ${boundsText(bounds)}`;
  return z.string().transform((raw, ctx) => {
    const n = parseDecimal(raw);
    if (!inBounds(n, bounds)) {
      ctx.addIssue({ code: 'custom', message: `${expected}, got ${JSON.stringify(raw)}` });
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
      ctx.addIssue({ code: 'custom', message: `${expected}, got ${JSON.stringify(raw)}` });
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
