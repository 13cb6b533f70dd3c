import type { InjectionToken } from 'tsyringe';
import type { PermitGate } from '../types/permit';
import type { BudgetGateOptions } from './gate-options';

/**
 * The token every permit gate is registered under: `container.resolveAll(PERMIT_GATE)` returns the
 * gates in registration order. A global symbol, so two copies of this package in one process
 * still agree on it.
 */
export const PERMIT_GATE: InjectionToken<PermitGate> = Symbol.for('portfolio-risk-governor:PermitGate');

/** The token `registerBudgetGate` passes the gate's options through. */
export const BUDGET_GATE_OPTIONS: InjectionToken<BudgetGateOptions> = Symbol.for(
  'portfolio-risk-governor:BudgetGateOptions',
);
