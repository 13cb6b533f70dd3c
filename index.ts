/**
 * portfolio-risk-governor: the public API, and nothing else. The budget engine and the worker live
 * in `lib/`, the Governor gate in `plugin/`, and the wire formats both share in `types/`.
 */
export * from './types';
export { computeBudget, validateBudgetParams, BudgetInputError } from './lib/engine/compute-budget';
export type { BudgetInputs, BudgetParams, BudgetResult } from './lib/engine/compute-budget';
export { loadConfig, ConfigError, CONFIG_VARIABLES } from './lib/config';
export type { ConfigIssue, WorkerConfig, LogLevel } from './lib/config';
export { RedisKeys, DEFAULT_KEY_PREFIX } from './lib/redis/keys';
export { createRedisClient, waitForReady, REDIS_DEFAULTS } from './lib/redis/client';
export type { RedisClient, RedisConnectOptions, RedisProfile } from './lib/redis/client';
export { BudgetWorker } from './lib/worker/budget-worker';
export type { BudgetWorkerOptions } from './lib/worker/budget-worker';
export type { CycleReport, WorkerRole, StaleInputType, CycleResult } from './lib/worker/cycle-report';
export { startWorkerService } from './lib/worker/worker-service';
export type { WorkerServiceOptions, WorkerServiceHandle } from './lib/worker/worker-service';
export * from './plugin';
