import 'reflect-metadata';

export { BudgetGate, type BreakerStateName } from './budget-gate';
export { BUDGET_GATE_DEFAULTS, GateOptionsError, type BudgetGateOptions } from './gate-options';
export {
  decideBudget,
  decideFromBudgetFields,
  isClosingRequest,
  planEffect,
  type DecisionPolicy,
  type PlanEffect,
} from './decide';
export { BREAKER_EVENTS, BREAKER_STATE, type BreakerEvent } from './gate-metrics';
export { INVALID_SYMBOL_LABEL } from './governor-metrics';
export { PermitPipeline, type GateOutcome, type PermitPipelineOptions, type PermitResult } from './permit-pipeline';
export { registerBudgetGate } from './register';
export { BUDGET_GATE_OPTIONS, PERMIT_GATE } from './tokens';
