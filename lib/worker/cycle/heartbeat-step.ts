import { performance } from 'node:perf_hooks';
import { encodeWorkerHeartbeat, type WorkerHeartbeat } from '../../../types/worker-heartbeat';
import { execBatch } from '../../redis/command-batch';
import { FENCED_WRITE, execFencedBatch, fencedWriteCommand } from '../../redis/fenced-write';
import type { RedisClient } from '../../redis/client';
import type { RedisKeys } from '../../redis/keys';
import type { WorkerConfig } from '../../config';
import type { HeartbeatCheck } from '../heartbeat-check';
import type { KeyProblems } from '../key-problems';
import type { ModeSwitch } from '../mode-switch';
import type { WorkerMetrics } from '../worker-metrics';
import type { CycleContext } from './cycle-context';
import type { CycleLease } from './cycle-lease';
import type { CycleMode } from './cycle-mode';
import { redisStep } from './redis-step';

export interface HeartbeatStepOptions {
  config: Pick<WorkerConfig, 'instanceId' | 'mode'>;
  client: RedisClient;
  keys: RedisKeys;
  metrics: WorkerMetrics;
  modeSwitch: ModeSwitch;
  cycleMode: CycleMode;
  check: HeartbeatCheck;
  keyProblems: KeyProblems;
  /** The lease whose fence the heartbeat is written under. */
  lease: CycleLease;
}

/**
 * The heartbeat step: after a leader cycle without a write failure, the heartbeat every replica
 * reads for /health and `p28_budgets_written_timestamp_seconds`. It also keeps the time of the
 * latest heartbeat seen (`note`, by every replica's read): when any replica last wrote budgets.
 */
export class HeartbeatStep {
  private budgetsWrittenAt: number | undefined;

  constructor(private readonly options: HeartbeatStepOptions) {}

  /** Epoch ms of the latest heartbeat seen; undefined before one was read or written. */
  get budgetsWrittenAtMs(): number | undefined {
    return this.budgetsWrittenAt;
  }

  async run(ctx: CycleContext): Promise<void> {
    const { config, client, keys, modeSwitch, cycleMode, keyProblems, lease } = this.options;
    const cycleMs = performance.now() - ctx.startedPerf;
    const beat: WorkerHeartbeat = {
      last_success_ts: Math.round(ctx.nowMs + cycleMs),
      leader: config.instanceId,
      symbols_written: ctx.report.written.length,
      cycle_ms: cycleMs,
      // What `p28-worker mode` reports: the mode the workers run, not the one of the operator's shell.
      mode: modeSwitch.mode,
      mode_source: cycleMode.source,
      configured_mode: config.mode,
    };
    const fence = lease.fence;
    const fields = encodeWorkerHeartbeat(beat);
    const [outcome] = await redisStep('write heartbeat', () =>
      fence
        ? execFencedBatch(client, [fencedWriteCommand(client, fence, keys.workerHeartbeat, 0, [], fields)])
        : execBatch(client, [['hset', keys.workerHeartbeat, ...Object.entries(fields).flat()]]),
    );
    if (outcome!.error) {
      // A heartbeat key of the wrong type costs the heartbeat, not the cycle: counted and named.
      keyProblems.note({ kind: 'heartbeat', problem: 'wrong_type', key: keys.workerHeartbeat, detail: outcome!.error.message });
      // The budgets were written all the same; this replica knows it, the stand-bys cannot.
      this.note(beat);
      return;
    }
    if (typeof outcome!.value === 'number' && outcome!.value !== FENCED_WRITE.written) return lease.fencedOut(ctx.report, 1);
    this.note(beat);
  }

  /** The heartbeat as last read (or written): Redis holds the truth, whichever replica wrote it. */
  note(beat: WorkerHeartbeat | undefined): void {
    if (beat === undefined || !this.options.check.accept(beat)) return;
    this.budgetsWrittenAt = beat.last_success_ts;
    this.options.metrics.budgetsWritten.set(beat.last_success_ts / 1000);
  }
}
