import { format } from 'node:util';
import type { Logger } from './logger';

/**
 * Routes `console.warn`, `console.error` and `console.log` into the JSON logger, for a process
 * whose output is JSON lines (the worker). Libraries print their own warnings with `console`
 * (ioredis: "[WARN] Redis server does not require a password, but a password was supplied.",
 * "Skipping the ready check ...", "[ioredis] Unhandled error event"): as raw lines they break a
 * log pipeline that parses every line, and they say nothing of which process or component spoke.
 * Each becomes a log line at warn (error for `console.error`) with `source: "console"`.
 */
export function routeConsoleToLogger(logger: Logger): void {
  const to = (level: 'warn' | 'error') => (...args: unknown[]) => {
    logger[level]({ source: 'console' }, format(...args));
  };
  console.warn = to('warn');
  console.error = to('error');
  console.log = to('warn');
}
