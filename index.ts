/**
 * portfolio-risk-governor: the public API, and nothing else, each name listed once. The budget
 * engine and the worker live in `lib/`, the Governor gate in `plugin/`, and the wire formats both
 * share in `types/`. Parsers, metrics and the worker's parts stay internal (importable by path in
 * the package's own tests, never from here).
 */
import 'reflect-metadata';

// The budget engine (pure).
export { computeBudget, validateBudgetParams, BudgetInputError } from './lib/engine/compute-budget';
export type { BudgetInputs, BudgetParams, BudgetResult } from './lib/engine/compute-budget';

// The gate: registration, the gate itself, its options and the permit pipeline.
export { registerBudgetGate } from './plugin/register';
export { BUDGET_GATE_OPTIONS, PERMIT_GATE } from './plugin/tokens';
export { BudgetGate, type BreakerStateName } from './plugin/budget-gate';
export { BUDGET_GATE_DEFAULTS, GATE_OPTION_SPECS, GateOptionsError, type BudgetGateOptions, type GateOptionSpec } from './plugin/gate-options';
export { PermitPipeline, type GateOutcome, type PermitPipelineOptions, type PermitResult } from './plugin/permit-pipeline';
export { decideBudget, decideFromBudgetFields, isClosingRequest, planEffect, type DecisionPolicy, type PlanEffect } from './plugin/decide';
export { BREAKER_EVENTS, BREAKER_STATE, type BreakerEvent } from './plugin/gate-metrics';
export { INVALID_SYMBOL_LABEL } from './plugin/governor-metrics';

// Wire formats: permits and decisions, budget hashes, violations, the heartbeat, the decision log and cycle history, the inputs.
export {
  PermitRequest,
  GateReason,
  ALLOW_REASONS,
  BLOCK_REASONS,
  FAIL_OPEN_REASONS,
  CLOSE_ACTIONS,
  type FailOpenReason,
  type GateDecision,
  type HashSource,
  type PermitGate,
  type ViolationDetail,
} from './types/permit';
export {
  BudgetHash,
  BUDGET_HASH_FIELDS,
  POSITION_STATUSES,
  PositionStatus,
  encodeBudgetHash,
  readBudgetHash,
  type BudgetHashFields,
} from './types/budget-hash';
export { ViolationEvent, ViolationStreamEntry, VIOLATION_EVENT_TYPE, encodeViolationEvent } from './types/violation-event';
export { WorkerHeartbeat, encodeWorkerHeartbeat } from './types/worker-heartbeat';
export {
  DecisionLogEntry,
  DECISION_LOG_FIELDS,
  DECISION_LOG_FORMAT,
  DECISION_LOG_SEPARATOR,
  DECISION_LOG_STREAM_FIELD,
  DECISION_LOG_VIAS,
  readLoggedDecision,
  type DecisionLogVia,
  type LoggedDecision,
} from './types/decision-log-entry';
export { CycleHistoryEntry, CYCLE_HISTORY_FORMAT, readRecordedCycle, type RecordedCycle } from './types/cycle-history-entry';
export { PortfolioStateHash, PositionSnapshotHash, MarketStateHash, ClusterStressHash } from './types/inputs';
export { Mode, MODES } from './types/mode';
export { SymbolName, SYMBOL_PATTERN, isValidSymbol } from './types/symbol';

// The worker: configuration, Redis connections and keys, the worker and its service.
export { loadConfig, ConfigError, CONFIG_VARIABLES } from './lib/config';
export type { ConfigIssue, WorkerConfig, LogLevel } from './lib/config';
export { createLogger, type Logger } from './lib/logger';
export { RedisKeys, DEFAULT_KEY_PREFIX } from './lib/redis/keys';
export { createRedisClient, waitForReady, REDIS_DEFAULTS } from './lib/redis/client';
export type { RedisClient, RedisConnectOptions, RedisProfile } from './lib/redis/client';
export { BudgetWorker } from './lib/worker/budget-worker';
export type { BudgetWorkerOptions } from './lib/worker/budget-worker';
export type { CycleReport, WorkerRole, StaleInputType, CycleResult } from './lib/worker/cycle-report';
export { startWorkerService } from './lib/worker/worker-service';
export type { WorkerServiceOptions, WorkerServiceHandle } from './lib/worker/worker-service';
