import { accessSync, constants } from 'node:fs';
import { z } from 'zod';
import { SYMBOL_PATTERN } from '../types/symbol';
import { FAMILY_PATTERN } from './redis/keys';
import type { HostPort } from './redis/client';
import { parseRedisUrl, redactUrl } from './redis/redis-url';

// How the text of one environment variable is read: the value schemas of `CONFIG_VARIABLES`.
// Each one's message says what was expected and never echoes a secret.

export const hostPortList = z.string().transform((raw, ctx) => {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const out: HostPort[] = [];
  for (const item of items) {
    const match = /^([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(item);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of host:port, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    out.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return out;
});

/** A file the worker can read (TLS material); the message names the path, never the content. */
export const readableFile = z.string().transform((raw, ctx) => {
  try {
    accessSync(raw, constants.R_OK);
    return raw;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${JSON.stringify(raw)} (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    return z.NEVER;
  }
});

/** A redis:// or rediss:// URL that `createRedisClient` can use; the message never shows its password. */
export const redisUrl = z.string().transform((raw, ctx) => {
  try {
    parseRedisUrl(raw);
    return raw;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

export function urlWithScheme(schemes: string[]) {
  return z.string().transform((raw, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    if (!url || !schemes.includes(url.protocol)) {
      const shown = JSON.stringify(redactUrl(raw));
      ctx.addIssue({ code: 'custom', message: `expected a ${schemes.map((s) => `${s}//`).join(' or ')} URL, got ${shown}` });
      return z.NEVER;
    }
    return raw;
  });
}

export const choice = <T extends readonly [string, ...string[]]>(values: T) =>
  z.string().transform((raw, ctx) => {
    const v = raw.trim().toLowerCase();
    if (!(values as readonly string[]).includes(v)) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    return v as T[number];
  });

export const flag = z.string().transform((raw, ctx) => {
  const v = raw.trim();
  if (v !== '0' && v !== '1') {
    ctx.addIssue({ code: 'custom', message: `expected 0 or 1, got ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  return v === '1';
});

// The token is a secret: a bad value is described, never echoed.
export const apiToken = z.string().transform((raw, ctx) => {
  if (!/^[\x21-\x7e]{16,512}$/.test(raw)) {
    ctx.addIssue({ code: 'custom', message: `expected 16 to 512 printable characters without spaces (got ${raw.length} characters)` });
    return z.NEVER;
  }
  return raw;
});

export const symbolList = z.string().transform((raw, ctx) => {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const bad = items.filter((s) => !SYMBOL_PATTERN.test(s));
  if (bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `expected comma-separated upper-case symbols, got ${JSON.stringify(bad.join(','))}` });
    return z.NEVER;
  }
  return items;
});

/** A key family (`state:positions`); `none` switches a legacy family off (`canBeNone`, the value is then undefined). */
export const family = <N extends boolean>(canBeNone: N) =>
  z.string().transform((raw, ctx): N extends true ? string | undefined : string => {
    const v = raw.trim();
    if (canBeNone && v === 'none') return undefined as N extends true ? string | undefined : string;
    if (!FAMILY_PATTERN.test(v)) {
      const none = canBeNone ? ', or none' : '';
      ctx.addIssue({ code: 'custom', message: `expected key segments of letters, digits, "_", "." or "-" joined by ":" (no wildcard)${none}, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    return v;
  });

export const text = (pattern: RegExp, expected: string) =>
  z.string().transform((raw, ctx) => {
    if (!pattern.test(raw)) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}, got ${JSON.stringify(raw)}` });
      return z.NEVER;
    }
    return raw;
  });
