import { CauseLog } from '../../cause-log';
import type { Logger } from '../../logger';
import type { CycleReport } from '../cycle-report';

/** The fields of a cycle's log line: what it read, wrote and skipped, and how it ended. */
function cycleLogLine(report: CycleReport): Record<string, unknown> {
  return {
    result: report.result,
    role: report.role,
    mode: report.mode,
    portfolio: report.portfolio.source,
    heat: report.heat?.source,
    symbols: report.symbols,
    ...(report.overCap ? { overCap: report.overCap } : {}),
    written: report.written.length,
    violations: report.violations.length,
    skipped: report.skipped.length,
    stale: report.staleInputs,
    writeFailures: report.writeFailures.length,
    ...(report.fenced ? { fenced: report.fenced } : {}),
    durationMs: Math.round(report.durationMs * 10) / 10,
    ...(report.error ? { error: report.error } : {}),
    ...(report.cause ? { cause: report.cause } : {}),
  };
}

/**
 * The cycle's log line: one `info` line (`"msg":"cycle"`) per cycle that did not fail; a failed
 * cycle is logged at `warn` once per cause (repeats are counted, not logged), and the end of the
 * failures once.
 */
export class CycleLog {
  /** Failed cycles, logged once per cause. */
  private readonly failureLog: CauseLog;

  constructor(private readonly logger: Logger) {
    this.failureLog = new CauseLog(logger);
  }

  write(report: CycleReport): void {
    const line = cycleLogLine(report);
    if (report.result === 'failed') {
      const failures = report.writeFailures.length > 0 ? { failures: report.writeFailures.slice(0, 5) } : {};
      this.failureLog.problem(report.cause ?? 'ERROR', { ...line, ...failures }, 'cycle failed; the next cycle writes everything again (repeats of this cause are counted, not logged)');
    } else {
      this.failureLog.resolved({ result: report.result }, 'cycles succeed again');
      this.logger.info(line, 'cycle');
    }
  }
}
