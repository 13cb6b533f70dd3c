import 'reflect-metadata';
import type { DependencyContainer } from 'tsyringe';
import { BudgetGate } from './budget-gate';
import type { BudgetGateOptions } from './gate-options';
import { BUDGET_GATE_OPTIONS, PERMIT_GATE } from './tokens';

/**
 * Builds a new gate through the container (so the container tracks it for `dispose()`), without
 * going through the `BudgetGate` registration, which holds the gate registered before.
 */
const NEW_BUDGET_GATE = Symbol('NewBudgetGate');

/**
 * Creates the budget gate and registers it in `container` (a root or a child container) under
 * `PERMIT_GATE`, after any gates registered there before, so `container.resolveAll(PERMIT_GATE)`
 * and `PermitPipeline.fromContainer(container)` include it. It is also registered under the
 * `BudgetGate` class, for code that flips its emergency switches, and `container.dispose()` closes
 * it. Returns the gate. Throws `GateOptionsError` on unusable options.
 *
 * tsyringe looks a token up in the container itself first and asks the parent only when the
 * token has no registration there: gates registered under `PERMIT_GATE` in a child hide those of
 * its parent. Register all of a pipeline's gates in the same container.
 */
export function registerBudgetGate(container: DependencyContainer, options: BudgetGateOptions): BudgetGate {
  container.register(BUDGET_GATE_OPTIONS, { useValue: options });
  container.register(NEW_BUDGET_GATE, { useClass: BudgetGate });
  const gate = container.resolve<BudgetGate>(NEW_BUDGET_GATE);
  container.register(PERMIT_GATE, { useValue: gate });
  container.register(BudgetGate, { useValue: gate });
  return gate;
}
