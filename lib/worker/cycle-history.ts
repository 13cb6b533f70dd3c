import type { Counter, Registry } from 'prom-client';
import { CYCLE_HISTORY_FORMAT } from '../../types/cycle-history-entry';
import { counter, metricOn } from '../registry-metrics';
import type { Logger } from '../logger';
import type { RedisClient } from '../redis/client';
import type { CycleReport } from './cycle-report';

/**
 * The worker's cycle history: one entry per leader cycle (and per failed cycle of any replica) in
 * `quantum:stream:p28.cycles`, bounded by XADD MAXLEN ~ (CYCLE_HISTORY_MAXLEN). Stand-by cycles are
 * not recorded: they say nothing about budgets and would multiply the entries by the replicas.
 * Appending never holds a cycle up and never fails one: a write that fails is logged once per
 * change and counted in `p28_cycle_history_write_fail_total`.
 */
export class CycleHistory {
  private failing = false;

  constructor(
    private readonly options: {
      client: RedisClient;
      streamKey: string;
      maxLen: number;
      instanceId: string;
      logger: Logger;
      onWriteFailed: () => void;
    },
  ) {}

  /** Appends the cycle (if it is one to record); resolves when written or failed, never rejects. */
  record(report: CycleReport): Promise<void> {
    if (this.options.maxLen <= 0 || (report.role !== 'leader' && report.result !== 'failed')) return Promise.resolve();
    const { client, streamKey, maxLen } = this.options;
    return client
      .xadd(streamKey, 'MAXLEN', '~', maxLen, '*', ...encodeCycle(report, this.options.instanceId))
      .then(
        () => {
          if (this.failing) this.options.logger.info('cycle history written again');
          this.failing = false;
        },
        (error: unknown) => {
          this.options.onWriteFailed();
          if (!this.failing) this.options.logger.warn({ err: (error as Error).message }, 'cycle history could not be written (counted in p28_cycle_history_write_fail_total)');
          this.failing = true;
        },
      );
  }
}

/** The cycle history's metric, declared once (docs/metrics.md's table is generated from it). */
export const CYCLE_HISTORY_METRICS = {
  writeFailures: counter({
    name: 'p28_cycle_history_write_fail_total',
    help: 'Cycles that could not be appended to the cycle history quantum:stream:p28.cycles (the cycle itself is unaffected).',
  }),
};

/** `p28_cycle_history_write_fail_total` on `registry`. */
export function cycleHistoryWriteFailures(registry: Registry): Counter {
  return metricOn(registry, CYCLE_HISTORY_METRICS.writeFailures);
}

/** The XADD field/value list of one cycle (`types/cycle-history-entry.ts`). */
export function encodeCycle(report: CycleReport, instanceId: string): string[] {
  return [
    'v', CYCLE_HISTORY_FORMAT,
    'ts', String(Math.round(report.startedAt)),
    'result', report.result,
    'duration_ms', String(Math.round(report.durationMs * 10) / 10),
    'symbols', String(report.symbols),
    'written', String(report.written.length),
    'leader', instanceId,
    'role', report.role,
    'mode', report.mode,
    'mode_source', report.modeSource,
    'portfolio', report.portfolio.source,
    'stale', JSON.stringify(report.staleInputs),
    'cause', report.cause ?? '',
  ];
}
