import type { CycleReport } from '../cycle-report';

/** How the worker's cycles have ended: what /health reports of them. */
export class CycleOutcomes {
  private lastReport: CycleReport | undefined;
  private lastSuccessAt: number | undefined;
  private failedInARowCount = 0;
  private lastErrorText: string | undefined;
  private lastCauseName: string | undefined;

  /** Takes a finished cycle's report. */
  record(report: CycleReport): void {
    const endedAt = report.startedAt + report.durationMs;
    if (report.result === 'ok' || report.result === 'standby') this.lastSuccessAt = endedAt;
    if (report.result === 'failed') {
      this.failedInARowCount += 1;
      this.lastErrorText = report.error ?? report.writeFailures.map((f) => `${f.target}: ${f.error}`)[0];
      this.lastCauseName = report.cause;
    } else {
      this.failedInARowCount = 0;
    }
    this.lastReport = report;
  }

  /** The report of the last cycle; undefined before one ended. */
  get last(): CycleReport | undefined {
    return this.lastReport;
  }

  /** Epoch ms (worker clock) at which the last cycle ended ok or standby; undefined before. */
  get lastSuccessAtMs(): number | undefined {
    return this.lastSuccessAt;
  }

  get failedInARow(): number {
    return this.failedInARowCount;
  }

  /** The error of the last failed cycle. */
  get lastError(): string | undefined {
    return this.lastErrorText;
  }

  /** The cause of the last failed cycle (`CycleReport.cause`). */
  get lastCause(): string | undefined {
    return this.lastCauseName;
  }
}
