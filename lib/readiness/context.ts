import type { WorkerConfig } from '../config';
import type { ReadinessContext } from './readiness';

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
