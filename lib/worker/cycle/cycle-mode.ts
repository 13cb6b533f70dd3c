import type { RedisKeys } from '../../redis/keys';
import type { KeyProblems } from '../key-problems';
import type { ModeDecision, ModeSource, ModeSwitch, OverrideRead } from '../mode-switch';
import type { WorkerMetrics } from '../worker-metrics';
import { countStale, type CycleContext } from './cycle-context';

export interface CycleModeOptions {
  modeSwitch: ModeSwitch;
  keys: RedisKeys;
  metrics: WorkerMetrics;
  keyProblems: KeyProblems;
}

/**
 * The cycle's effective mode, from the run-time override read this cycle (`ModeSwitch`): set on the
 * report and the metrics, its source kept for /health and the heartbeat, an invalid override
 * counted and a key of the wrong type named.
 */
export class CycleMode {
  private modeSource: ModeSource = 'env';

  constructor(private readonly options: CycleModeOptions) {}

  /** Where the mode of the latest cycle came from (`env` before the first). */
  get source(): ModeSource {
    return this.modeSource;
  }

  /**
   * Settles the mode from `override`; `auditTail` (the `to` of the audit stream's latest entry) is
   * given by the leader only, which then appends the audit entry of a switch with its writes.
   */
  settle(ctx: CycleContext, override: OverrideRead, auditTail?: string | null): void {
    const { modeSwitch, keys } = this.options;
    const decision = modeSwitch.resolve(override, ctx.nowMs, auditTail);
    this.apply(ctx, decision);
    ctx.mode = decision.mode;
    ctx.audit = decision.audit ? [modeSwitch.auditCommand(keys.modeAuditStream, decision.audit)] : [];
  }

  private apply(ctx: CycleContext, decision: ModeDecision): void {
    const { metrics, keyProblems, keys } = this.options;
    ctx.report.mode = decision.mode;
    ctx.report.modeSource = decision.source;
    this.modeSource = decision.source;
    metrics.setMode(decision.mode);
    metrics.setModeSource(decision.source);
    if (decision.invalidOverride !== undefined) countStale(metrics, ctx.report, 'mode_override');
    if (decision.invalidOverride?.includes('WRONGTYPE')) keyProblems.note({ kind: 'mode_override', problem: 'wrong_type', key: keys.modeOverride });
  }
}
