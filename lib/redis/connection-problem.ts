import type { RedisClient } from './client';
import { redisErrorCause } from './error-cause';

/** Why a client is not connected, as its latest connection error told. */
export interface ConnectionProblem {
  /** `WRONGPASS`, `NOAUTH`, `CONNECTION`, `TIMEOUT`, ... (`redisErrorCause`). */
  cause: string;
  /** The error's message (Redis never puts the password in it). */
  message: string;
}

const latest = new WeakMap<RedisClient, ConnectionProblem>();
const tracked = new WeakSet<RedisClient>();

/**
 * Remembers the latest connection error of `client` until it is ready again, so that a client that
 * never becomes ready can say why: a wrong password shows as `WRONGPASS`, a missing one as `NOAUTH`,
 * instead of the generic "not connected" every later command reports. Idempotent.
 */
export function trackConnectionProblems(client: RedisClient): void {
  if (tracked.has(client)) return;
  tracked.add(client);
  client.on('error', (error: Error) => latest.set(client, { cause: redisErrorCause(error), message: error.message }));
  client.on('ready', () => latest.delete(client));
}

/** The latest connection error of a tracked client that is not ready; undefined when it is ready or none was seen. */
export function connectionProblem(client: RedisClient): ConnectionProblem | undefined {
  return client.status === 'ready' ? undefined : latest.get(client);
}

/** Causes that no retry fixes: the credentials in the configuration are wrong or missing. */
export const AUTH_CAUSES: ReadonlySet<string> = new Set(['WRONGPASS', 'NOAUTH']);

/**
 * One line for an operator on why Redis cannot be used, naming the variable to fix when the cause is
 * the credentials. `where` is the redacted URL.
 */
export function describeConnectionProblem(where: string, problem: ConnectionProblem | undefined, fallback: string): string {
  if (problem?.cause === 'WRONGPASS') {
    return `Redis at ${where} refused the credentials (WRONGPASS: wrong password, or the user does not exist or is disabled); check the user and password in REDIS_URL`;
  }
  if (problem?.cause === 'NOAUTH') {
    return `Redis at ${where} requires a password (NOAUTH) and none was given; put it in REDIS_URL (redis://user:password@host:port/db)`;
  }
  return `cannot reach Redis at ${where}: ${problem ? `${problem.message} (${fallback})` : fallback}`;
}
