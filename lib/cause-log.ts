import type { Logger } from './logger';

/**
 * Logs a recurring problem once per change of cause instead of once per cycle or retry: the first
 * occurrence of a cause is logged, repeats are only counted, and the next log line (a new cause, or
 * the recovery) says how many times the previous cause occurred. A Redis outage retried every few
 * hundred milliseconds, or an OOM that fails every cycle, then costs two lines, not thousands.
 */
export class CauseLog {
  private current: string | undefined;
  private repeats = 0;

  constructor(private readonly logger: Logger) {}

  /** The cause being counted, and how many times it occurred so far; undefined while healthy. */
  get state(): { cause: string; count: number } | undefined {
    return this.current === undefined ? undefined : { cause: this.current, count: this.repeats };
  }

  /** One occurrence of `cause`: logged at `level` when it differs from the previous cause, else counted. */
  problem(cause: string, fields: Record<string, unknown>, message: string, level: 'warn' | 'error' = 'warn'): void {
    if (cause === this.current) {
      this.repeats += 1;
      return;
    }
    const previous = this.current === undefined ? {} : { previousCause: this.current, previousCount: this.repeats };
    this.current = cause;
    this.repeats = 1;
    this.logger[level]({ ...fields, cause, ...previous }, message);
  }

  /** The problem is over: logged once at info, with the last cause and its count; nothing if there was none. */
  resolved(fields: Record<string, unknown>, message: string): void {
    if (this.current === undefined) return;
    this.logger.info({ ...fields, cause: this.current, count: this.repeats }, message);
    this.current = undefined;
    this.repeats = 0;
  }
}
