import { ReplyError } from 'ioredis';

/**
 * The one classifier of Redis errors, for the worker (cycle causes, /health, logs), the command
 * batches and the gate (fail-open reasons, the breaker's filter).
 */

/** Error codes Redis prefixes its replies with, that name a cause an operator can act on. */
const REDIS_ERROR_CODES = 'NOPERM|OOM|READONLY|NOSCRIPT|WRONGTYPE|LOADING|MASTERDOWN|CLUSTERDOWN|BUSY|NOAUTH|WRONGPASS|MISCONF|TRYAGAIN|CROSSSLOT|EXECABORT|ERR';
const CODE_ANYWHERE = new RegExp(`\\b(${REDIS_ERROR_CODES})\\b`);

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** An error Redis itself answered (a `ReplyError`, such as WRONGTYPE or OOM), as opposed to one raised because no answer came. */
export function isReplyError(error: unknown): boolean {
  return error instanceof (ReplyError as ErrorConstructor);
}

/** A key that holds another type than the command expects: Redis answered, so this is bad data, not an unavailable Redis. */
export function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

/** No answer in time: the client's command timeout (`Command timed out`), or a timer's error with code `ETIMEDOUT` (opossum's). */
export function isTimeout(error: unknown): boolean {
  return (error instanceof Error && (error as Error & { code?: unknown }).code === 'ETIMEDOUT') || /timed out/i.test(messageOf(error));
}

/**
 * A short, stable name for why a Redis call failed, for /health, logs and reports: the error code
 * Redis answered with (`NOPERM`, `OOM`, `READONLY`, `NOAUTH`, `WRONGPASS`, `LOADING`, `MASTERDOWN`,
 * `CLUSTERDOWN`, `ERR`, ...), `TIMEOUT` when no answer came in time, `CONNECTION` when there was no
 * connection to ask, `SENTINEL` when no Sentinel could name a master, else `ERROR`. Redis prefixes each error reply with its code, also when the
 * command ran inside one of the worker's scripts, so the first word names the cause.
 */
export function redisErrorCause(error: unknown): string {
  const message = messageOf(error);
  if (/^ERR The user executing the script can't/.test(message)) return 'NOPERM';
  if (/sentinel/i.test(message)) return 'SENTINEL';
  const code = /^([A-Z][A-Z_]{1,31})(?:\s|$)/.exec(message)?.[1];
  if (code !== undefined) return code;
  if (isTimeout(error)) return 'TIMEOUT';
  if (/connection|stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH/i.test(message)) return 'CONNECTION';
  return 'ERROR';
}

/**
 * The Redis error code inside a failure message that says where it happened first
 * (`lease: NOPERM ...`), so an operator sees the cause; undefined when the message carries none
 * (a timeout, a refused connection).
 */
export function redisErrorCodeIn(message: string): string | undefined {
  return CODE_ANYWHERE.exec(message)?.[1];
}
