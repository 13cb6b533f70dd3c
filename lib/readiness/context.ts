import type { Mode } from '../../types/mode';
import type { WorkerConfig } from '../config';
import type { BudgetParams } from '../engine/compute-budget';
import type { ReadinessThresholds } from './thresholds';

/** What the readiness judgement depends on besides the recorded data. */
export interface ReadinessContext {
  nowMs: number;
  windowMs: number;
  /** The budget engine's parameters of the configuration (the env file the worker runs on). */
  params: BudgetParams;
  /** P28_MODE of that configuration. */
  configuredMode: Mode;
  /** Longest time without budgets written that still counts as stable (HEALTH_MAX_BUDGET_AGE_SEC). */
  maxLeaderGapMs: number;
  violationRepublishMs: number;
  computeIntervalMs: number;
  thresholds?: Partial<ReadinessThresholds>;
}

/** The readiness context of a worker configuration: its formula, its mode and its time limits. */
export function readinessContext(config: WorkerConfig, windowMs: number, nowMs: number): ReadinessContext {
  return {
    nowMs,
    windowMs,
    params: config.budget,
    configuredMode: config.mode,
    maxLeaderGapMs: config.healthMaxBudgetAgeSec * 1000,
    violationRepublishMs: config.violationRepublishSec * 1000,
    computeIntervalMs: config.computeIntervalSec * 1000,
  };
}
