import type { RedisKeys } from '../../redis/keys';
import type { BudgetWriter, WriteFailure } from '../budget-writer';
import type { KeyProblems } from '../key-problems';
import type { WorkerMetrics } from '../worker-metrics';
import type { CycleContext } from './cycle-context';
import type { CycleLease } from './cycle-lease';
import { redisStep } from './redis-step';

export interface WriteStepOptions {
  writer: BudgetWriter;
  keys: RedisKeys;
  keyProblems: KeyProblems;
  metrics: WorkerMetrics;
  lease: CycleLease;
}

/**
 * The write step: every budget hash, the violations due and the mode audit entry of a switch, in
 * one batch (`BudgetWriter`). Sets the report's written symbols, write failures, published
 * violations and fenced writes, and `ctx.published`.
 */
export class WriteStep {
  constructor(private readonly options: WriteStepOptions) {}

  async run(ctx: CycleContext): Promise<void> {
    const { report, announce: writes, audit } = ctx;
    if (writes.length === 0 && audit.length === 0) return;
    const result = await redisStep('write budgets', () => this.options.writer.write(writes, audit));
    report.written = result.written;
    report.writeFailures = this.keepOwnFailures(result.failures);
    if (result.fenced.length > 0) this.options.lease.fencedOut(report, result.fenced.length);
    for (const write of writes) if (write.violation && result.published.includes(write.record.symbol)) report.violations.push(write.violation);
    // Logged with the failed cycle (once per cause), not here on every cycle.
    if (report.writeFailures.length > 0) this.options.metrics.redisWriteFail.inc();
    ctx.published = new Set(result.published);
  }

  /**
   * A key of the wrong type (a string where a budget hash or a stream belongs) costs only its own
   * symbol or feature: it is counted and named (`KeyProblems`), not a failure of the cycle. What is
   * left are the failures that say Redis refused the cycle's writes (NOPERM, OOM, READONLY, ...).
   */
  private keepOwnFailures(failures: readonly WriteFailure[]): WriteFailure[] {
    const { keys, keyProblems } = this.options;
    const kept: WriteFailure[] = [];
    for (const failure of failures) {
      if (!failure.error.startsWith('WRONGTYPE')) {
        kept.push(failure);
        continue;
      }
      const stream = failure.target.split(' ')[0]!;
      if (stream === keys.violationStream) keyProblems.note({ kind: 'violation_stream', problem: 'wrong_type', key: stream });
      else if (stream === keys.modeAuditStream) keyProblems.note({ kind: 'mode_audit_stream', problem: 'wrong_type', key: stream });
      else keyProblems.note({ kind: 'budget', problem: 'wrong_type', key: keys.budget(failure.target) });
    }
    return kept;
  }
}
