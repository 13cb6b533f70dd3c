import { READINESS_EXIT } from './readiness-command';

/**
 * Exit codes: 0 clean stop, 1 run-time failure (such as Redis unreachable), 2 bad configuration or
 * usage (a bad variable, env file, subcommand, option or argument), 3 the HTTP port cannot be
 * listened on (in use, or not allowed), 4 `readiness`: at least one checklist item fails.
 */
export const EXIT = Object.freeze({ ok: 0, failure: 1, config: 2, usage: 2, listen: 3, notReady: READINESS_EXIT.notReady });
