import { InvalidArgumentError } from 'commander';
import { BudgetGate } from '../../plugin/budget-gate';
import { normalizeSymbol } from '../../types/symbol';
import type { GateDecision, PermitRequest } from '../../types/permit';
import { usd } from './text-table';
import { withRedis } from './with-redis';

/** A decision in words: the verdict, the reason and the numbers behind it. */
export function describeDecision(plan: PermitRequest, decision: GateDecision): string {
  const verdict = !decision.allow ? 'BLOCK' : decision.failOpen ? 'ALLOW (fail-open)' : 'ALLOW';
  const why = decision.detail ? `${decision.reason}: ${decision.detail}` : decision.reason;
  const lines = [`${plan.symbol} ${plan.side ?? ''} ${plan.qty ?? ''}`.replace(/\s+/g, ' ').trim() + `: ${verdict} (${why})`];
  const numbers = [
    `mode ${decision.mode ?? 'none'}`,
    decision.budgetUsd !== undefined ? `budget ${usd(decision.budgetUsd)} USD` : undefined,
    decision.positionNotionalUsd !== undefined ? `position ${usd(decision.positionNotionalUsd)} USD` : undefined,
    decision.projectedNotionalUsd !== undefined ? `after the plan ${usd(decision.projectedNotionalUsd)} USD` : undefined,
  ].filter((part) => part !== undefined);
  lines.push(numbers.join(', '));
  if (decision.wouldBlock && decision.allow) lines.push('would block under enforce; allowed because the hash says shadow');
  return lines.join('\n') + '\n';
}

/** `p28-worker check`: asks the budget gate (the same code the Governor embeds) about one plan; reads only. */
export async function checkCommand(symbol: string, options: { side: 'BUY' | 'SELL'; qty: number; notional?: number; action: string }): Promise<void> {
  await withRedis(async (client, config) => {
    // An operator's terminal may be farther from Redis than the Governor: a roomier time limit.
    // Not logged: an operator's question is not a Governor's decision (readiness counts those). It
    // reserves nothing either (it is no plan in flight); other plans' reservations still count.
    const gate = new BudgetGate({ redis: client, keyPrefix: config.keyPrefix, timeoutMs: 1000, decisionLogMaxLen: 0, reservationTtlMs: 0 });
    try {
      const plan: PermitRequest = { planId: `p28-worker-check-${process.pid}`, symbol, action: options.action, side: options.side, qty: options.qty };
      if (options.notional !== undefined) plan.notionalUsd = options.notional;
      process.stdout.write(describeDecision(plan, await gate.evaluate(plan)));
    } finally {
      await gate.close();
    }
  }, 'gate');
}

/** `--qty` and `--notional` of `check`. */
export function positiveNumber(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError('expected a number > 0');
  return value;
}

/** A symbol as an operator types it: `btcusdt` is `BTCUSDT`. */
export function symbolArgument(raw: string): string {
  const symbol = normalizeSymbol(raw);
  if (symbol === undefined) throw new InvalidArgumentError('expected 1-32 letters or digits, such as BTCUSDT');
  return symbol;
}
