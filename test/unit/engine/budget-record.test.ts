import { expect } from 'chai';
import { buildBudgetWrite, type BudgetRecordContext } from '../../../lib/engine/budget-record';
import { BudgetInputError } from '../../../lib/engine/compute-budget';
import { loadConfig } from '../../../lib/config';
import type { SymbolInputs } from '../../../lib/engine/budget-record';

const ctx: BudgetRecordContext = { equityUsd: 100000, portfolioHeat: 0.65, params: loadConfig({}).budget, mode: 'shadow', timestamp: 1769553243 };
const btc = (overrides: Partial<SymbolInputs> = {}): SymbolInputs => ({
  symbol: 'BTCUSDT',
  positionAmt: 0.5,
  positionPrice: 100000,
  notionalUsd: 50000,
  positionStatus: 'ok',
  clusterId: 'default',
  clusterStress: 0,
  volRegime: 0.33,
  ...overrides,
});

describe('buildBudgetWrite', () => {
  it('gives the guide Test 1 record and its violation', () => {
    const { record, violation } = buildBudgetWrite(btc(), ctx);
    expect(record).to.include({ budget_usd: 1348, stress_factor: 0.326, over_budget_usd: 48652, last_violation_ts: 1769553243, position_price: 100000 });
    expect(violation).to.deep.equal({
      event_type: 'budget.violation',
      symbol: 'BTCUSDT',
      position_notional: 50000,
      budget_usd: 1348,
      over_budget: 48652,
      mode: 'shadow',
      timestamp: 1769553243,
    });
  });

  it('reports no violation at exactly the budget, and one of a cent just above it', () => {
    expect(buildBudgetWrite(btc({ notionalUsd: 1348 }), ctx).violation).to.equal(undefined);
    const above = buildBudgetWrite(btc({ notionalUsd: 1348.01 }), ctx);
    expect(above.record.over_budget_usd).to.equal(0.01);
    expect(above.violation?.over_budget).to.equal(0.01);
  });

  it('leaves position_price and last_violation_ts out for a flat symbol without a price', () => {
    const { record, violation } = buildBudgetWrite(btc({ positionAmt: 0, positionPrice: undefined, notionalUsd: 0 }), ctx);
    expect(record).to.not.have.property('position_price');
    expect(record).to.not.have.property('last_violation_ts');
    expect(record).to.include({ position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 });
    expect(violation).to.equal(undefined);
  });

  it('throws BudgetInputError rather than build a record from out-of-range input', () => {
    expect(() => buildBudgetWrite(btc({ clusterStress: Number.NaN }), ctx)).to.throw(BudgetInputError);
  });
});
