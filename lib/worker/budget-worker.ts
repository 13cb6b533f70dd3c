import type { Mode } from '../../types/mode';
import type { WorkerConfig } from '../config';
import { HeatSource, type HeatReader } from './sources/heat-source';
import { RedisKeys } from '../redis/keys';
import { LeaderLease } from './leader-lease';
import { silentLogger, type Logger } from '../logger';
import { ModeSwitch } from './mode-switch';
import type { WorkerHealthFacts } from './health';
import type { RedisClient } from '../redis/client';
import { WorkerMetrics } from './worker-metrics';
import type { CycleReport, WorkerRole } from './cycle-report';
import type { ServerClock } from '../redis/server-clock';
import { HeartbeatCheck } from './heartbeat-check';
import { KeyProblems } from './key-problems';
import { CycleLoop } from './cycle/cycle-loop';
import { WorkerCycle } from './cycle/worker-cycle';

export interface BudgetWorkerOptions {
  config: WorkerConfig;
  /** A connected (or connecting) client with the `worker` profile. */
  redis: RedisClient;
  /** Default: a fresh `WorkerMetrics` with its own registry. */
  metrics?: WorkerMetrics;
  /** Default: silent. */
  logger?: Logger;
  /** Default: `HeatSource` on HEAT_GATE_METRICS_URL. */
  heatSource?: HeatReader;
  /** Wall clock in epoch ms for timestamps, staleness and last-known-good ages (default `Date.now`). */
  now?: () => number;
  /** Default: COUNT hint of the snapshot SCAN, see `PORTFOLIO_READER_DEFAULTS`. */
  scanCount?: number;
  /**
   * Redis's clock: measured once per cycle, it stamps every write and judges every age (the default
   * for `now`). Without it and without `now`, the host clock.
   */
  clock?: ServerClock;
}

/**
 * The budget worker: every BUDGET_COMPUTE_INTERVAL_SEC, the replica holding the lease reads the
 * portfolio state, the position snapshots, heat, cluster stress and vol regimes, computes every
 * symbol's budget and writes the budget hashes (with their TTL) and violation events. Other replicas
 * stand by and take the lease over when the leader stops renewing it.
 *
 * The cycle and its steps are in `cycle/` (`WorkerCycle`), the loop in `cycle/cycle-loop.ts`.
 * `runOnce()` never rejects: a failing cycle is reported, logged and counted, and the loop started by
 * `start()` goes on. Cycles never overlap.
 */
export class BudgetWorker {
  readonly metrics: WorkerMetrics;
  readonly lease: LeaderLease;
  private readonly modeSwitch: ModeSwitch;
  private readonly keyProblems: KeyProblems;
  private readonly heartbeatCheck: HeartbeatCheck;
  private readonly cycle: WorkerCycle;
  private readonly loop: CycleLoop;
  private readonly createdAt: number;

  constructor(options: BudgetWorkerOptions) {
    const { config } = options;
    const client = options.redis;
    const keys = new RedisKeys(config.keyPrefix, config.inputFamilies);
    const logger = options.logger ?? silentLogger;
    const metrics = (this.metrics = options.metrics ?? new WorkerMetrics());
    const clock = options.clock;
    const now = options.now ?? clock?.now ?? (() => Date.now());
    const keyProblems = (this.keyProblems = new KeyProblems(metrics.registry, logger));
    this.heartbeatCheck = new HeartbeatCheck({ now, problems: keyProblems, key: keys.workerHeartbeat });
    const heat =
      options.heatSource ??
      new HeatSource({
        url: config.heatGateMetricsUrl,
        timeoutMs: config.heatFetchTimeoutMs,
        maxBytes: config.heatMaxBytes,
        maxLkgAgeSec: config.maxLkgAgeSec,
        now,
        logger,
      });
    this.modeSwitch = new ModeSwitch({ configuredMode: config.mode, enforceSymbols: config.enforceSymbols, instanceId: config.instanceId, logger });
    this.lease = new LeaderLease(client, { key: keys.workerLease, instanceId: config.instanceId, ttlMs: config.leaseTtlMs, logger });
    this.cycle = new WorkerCycle({
      config,
      client,
      keys,
      logger,
      metrics,
      now,
      clock,
      heat,
      scanCount: options.scanCount,
      modeSwitch: this.modeSwitch,
      lease: this.lease,
      keyProblems,
      heartbeatCheck: this.heartbeatCheck,
    });
    this.loop = new CycleLoop(() => this.cycle.run(), config.computeIntervalSec * 1000);
    this.createdAt = now();
    metrics.setMode(config.mode);
    metrics.setModeSource('env');
    metrics.setLeader(false);
  }

  /** The effective mode of the latest cycle (P28_MODE before the first). */
  get mode(): Mode {
    return this.modeSwitch.mode;
  }

  get role(): WorkerRole {
    return this.cycle.lease.role;
  }

  /** Epoch ms (worker clock) at which the last cycle ended ok or standby; undefined before. */
  get lastSuccessAtMs(): number | undefined {
    return this.cycle.outcomes.lastSuccessAtMs;
  }

  get lastCycle(): CycleReport | undefined {
    return this.cycle.outcomes.last;
  }

  /** What /health reports about this worker (`evaluateHealth`). */
  get healthFacts(): WorkerHealthFacts {
    const outcomes = this.cycle.outcomes;
    return {
      mode: this.mode,
      modeSource: this.cycle.mode.source,
      role: this.role,
      budgetsWrittenAtMs: this.cycle.heartbeat.budgetsWrittenAtMs,
      startedAtMs: this.createdAt,
      lastSuccessAtMs: outcomes.lastSuccessAtMs,
      lastCycleResult: outcomes.last?.result,
      failedInARow: outcomes.failedInARow,
      lastError: outcomes.lastError,
      lastCause: outcomes.lastCause,
      futureHeartbeat: this.heartbeatCheck.future,
      invalidKeys: this.keyProblems.current,
      positions: this.cycle.universe.positions,
    };
  }

  /** Runs one cycle now; while one is running, returns that one instead of starting another. */
  runOnce(): Promise<CycleReport> {
    return this.loop.runOnce();
  }

  /** Starts the loop: a cycle now, then one every BUDGET_COMPUTE_INTERVAL_SEC, measured start to start. */
  start(): void {
    this.loop.start();
  }

  /**
   * Stops the loop, lets a running cycle finish (it is bounded by the Redis command and heat
   * timeouts) and releases the lease if this replica holds it. Does not close the Redis client.
   */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.cycle.lease.release();
  }
}
