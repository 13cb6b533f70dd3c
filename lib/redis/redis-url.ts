/**
 * Redis URLs with credentials: parsed and redacted without ever putting the password in an error.
 *
 * WHATWG `URL` cannot be used on the raw string: a password with `/`, `?`, `#` or `@` ends the
 * authority early (then the "host" is part of the password and the error quotes the whole input),
 * and `decodeURIComponent` throws on a stray `%`. Credentials are therefore split off first, at the
 * last `@` (host, port and db never contain one), and only the credential-free rest goes to `URL`.
 */

/** The parts of a redis:// or rediss:// URL that ioredis needs. */
export interface RedisUrlParts {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
}

/** A Redis URL that cannot be used; its message shows the URL with its credentials hidden. */
export class RedisUrlError extends Error {
  readonly code = 'P28_REDIS_URL';
  constructor(
    /** The URL with credentials hidden (`redactUrl`). */
    readonly redactedUrl: string,
    readonly problem: string,
  ) {
    super(`${problem}, got ${JSON.stringify(redactedUrl)}`);
    this.name = 'RedisUrlError';
  }
}

interface CredentialSplit {
  /** Everything before the credentials (`redis://`), or '' when there is no `//`. */
  head: string;
  userinfo: string;
  /** Everything after the `@`: host, port, path. */
  tail: string;
}

function splitCredentials(raw: string): CredentialSplit | undefined {
  const at = raw.lastIndexOf('@');
  if (at < 0) return undefined;
  const slashes = raw.indexOf('//');
  const start = slashes >= 0 && slashes < at ? slashes + 2 : 0;
  return { head: raw.slice(0, start), userinfo: raw.slice(start, at), tail: raw.slice(at + 1) };
}

/** Percent-decodes what is well-formed and keeps the rest as typed (`%ZZ` stays `%ZZ`). */
function lenientDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

/**
 * Replaces the password (and a user name that stands alone, which may be a token) of a URL with
 * `***`, for logs and errors. Works on anything, URL or not: whatever precedes the last `@` after
 * `//` is treated as credentials.
 */
export function redactUrl(raw: string): string {
  const split = splitCredentials(raw);
  if (!split) return raw;
  const colon = split.userinfo.indexOf(':');
  const shown = colon >= 0 ? `${split.userinfo.slice(0, colon)}:***` : '***';
  return `${split.head}${shown}@${split.tail}`;
}

/**
 * Parses a redis:// or rediss:// URL (`redis://[user[:password]@]host[:port][/db]`). Credentials
 * may contain any character; percent-encoded ones are decoded. Throws `RedisUrlError`, whose
 * message never contains the password.
 */
export function parseRedisUrl(raw: string): RedisUrlParts {
  const scheme = /^(rediss?):\/\//i.exec(raw);
  if (!scheme) throw new RedisUrlError(redactUrl(raw), 'expected a redis:// or rediss:// URL');
  const split = splitCredentials(raw);
  const rest = split ? split.tail : raw.slice(scheme[0].length);
  let url: URL;
  try {
    url = new URL(`redis://${rest}`);
  } catch {
    throw new RedisUrlError(redactUrl(raw), 'expected a redis:// or rediss:// URL with a valid host, port and db');
  }
  const path = url.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0 || !/^\d*$/.test(path)) {
    throw new RedisUrlError(redactUrl(raw), 'expected a database number after the host');
  }
  let username: string | undefined;
  let password: string | undefined;
  if (split) {
    const colon = split.userinfo.indexOf(':');
    const user = colon >= 0 ? split.userinfo.slice(0, colon) : split.userinfo;
    username = user === '' ? undefined : lenientDecode(user);
    password = colon >= 0 ? lenientDecode(split.userinfo.slice(colon + 1)) : undefined;
    if (password === '') password = undefined;
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    username,
    password,
    db,
    tls: scheme[1]!.toLowerCase() === 'rediss',
  };
}
