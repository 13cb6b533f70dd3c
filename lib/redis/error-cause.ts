/**
 * A short, stable name for why a Redis call failed, for /health, logs and reports: the error code
 * Redis answered with (`NOPERM`, `OOM`, `READONLY`, `NOAUTH`, `WRONGPASS`, `LOADING`, `MASTERDOWN`,
 * `CLUSTERDOWN`, `ERR`, ...), `TIMEOUT` when no answer came in time, `CONNECTION` when there was no
 * connection to ask, `SENTINEL` when no Sentinel could name a master, else `ERROR`. Redis prefixes each error reply with its code, also when the
 * command ran inside one of the worker's scripts, so the first word names the cause.
 */
export function redisErrorCause(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/^ERR The user executing the script can't/.test(message)) return 'NOPERM';
  if (/sentinel/i.test(message)) return 'SENTINEL';
  const code = /^([A-Z][A-Z_]{1,31})(?:\s|$)/.exec(message)?.[1];
  if (code !== undefined) return code;
  if (/timed out/i.test(message)) return 'TIMEOUT';
  if (/connection|stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH/i.test(message)) return 'CONNECTION';
  return 'ERROR';
}
