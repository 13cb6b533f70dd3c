/**
 * portfolio-risk-governor: the public API. The budget worker lives in `lib/`, the Governor gate in
 * `plugin/`, and the wire formats both share in `types/`.
 */
export * from './types';
export * from './lib/budget';
export * from './lib/config';
export * from './lib/keys';
export { createRedisClient, waitForReady, REDIS_DEFAULTS } from './lib/redis';
export type { RedisClient, RedisConnectOptions, RedisProfile } from './lib/redis';
export { createLogger } from './lib/logger';
export { LocalRedisServer } from './lib/local-redis-server';
export * from './plugin';
export { BudgetWorker } from './lib/budget-worker';
export type { BudgetWorkerOptions, CycleReport, WorkerRole } from './lib/budget-worker';
export { WorkerMetrics, STALE_INPUT_TYPES, CYCLE_RESULTS } from './lib/worker-metrics';
export type { StaleInputType, CycleResult, SymbolBudgetSample } from './lib/worker-metrics';
export { HeatSource, heatFromExposition, HEAT_METRIC } from './lib/heat-source';
export type { HeatReader, HeatReading, HeatFailure, HeatSourceOptions } from './lib/heat-source';
export { LeaderLease } from './lib/leader-lease';
export type { LeaderLeaseOptions } from './lib/leader-lease';
export { ModeSwitch, parseModeOverride, MODE_SWITCH_DEFAULTS } from './lib/mode-switch';
export type { ModeDecision, ModeAuditEntry, ModeSource } from './lib/mode-switch';
export { startHttpServer, SERVICE_NAME, HTTP_SERVER_DEFAULTS } from './lib/http-server';
export type { HealthBody, HttpServerOptions, HttpServerHandle } from './lib/http-server';
export { startWorkerService, WORKER_SERVICE_DEFAULTS } from './lib/worker-service';
export type { WorkerServiceOptions, WorkerServiceHandle } from './lib/worker-service';
