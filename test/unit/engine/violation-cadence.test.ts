import { expect } from 'chai';
import { ViolationCadence, violationDue } from '../../../lib/engine/violation-cadence';

describe('violationDue', () => {
  const last = { overBudgetUsd: 1000, budgetUsd: 1348, mode: 'shadow', atMs: 0 };

  it('announces a symbol that has just gone over budget', () => {
    expect(violationDue(undefined, { overBudgetUsd: 0.01, budgetUsd: 1348, mode: 'shadow' }, 0, 10000)).to.equal(true);
  });

  it('announces a move of more than 1 % of the over-budget amount or of the budget at once, not a smaller one', () => {
    expect(violationDue(last, { overBudgetUsd: 1010, budgetUsd: 1348, mode: 'shadow' }, 1000, 10000)).to.equal(false);
    expect(violationDue(last, { overBudgetUsd: 1010.01, budgetUsd: 1348, mode: 'shadow' }, 1000, 10000)).to.equal(true);
    expect(violationDue(last, { overBudgetUsd: 989, budgetUsd: 1348, mode: 'shadow' }, 1000, 10000)).to.equal(true);
    expect(violationDue(last, { overBudgetUsd: 1000, budgetUsd: 1330, mode: 'shadow' }, 1000, 10000)).to.equal(true);
  });

  it('announces a mode switch at once', () => {
    expect(violationDue(last, { overBudgetUsd: 1000, budgetUsd: 1348, mode: 'enforce' }, 1000, 10000)).to.equal(true);
  });

  it('repeats an unchanged violation once republishMs has passed, not before', () => {
    const same = { overBudgetUsd: 1000, budgetUsd: 1348, mode: 'shadow' };
    expect(violationDue(last, same, 9999, 10000)).to.equal(false);
    expect(violationDue(last, same, 10000, 10000)).to.equal(true);
  });
});

describe('ViolationCadence', () => {
  it('forgets a symbol back within budget, so going over again is news', () => {
    const cadence = new ViolationCadence(10000);
    const v = { overBudgetUsd: 1000, budgetUsd: 1348, mode: 'shadow' };
    cadence.record('BTCUSDT', v, 0);
    expect(cadence.due('BTCUSDT', v, 1000)).to.equal(false);
    cadence.retain(new Set());
    expect(cadence.due('BTCUSDT', v, 2000)).to.equal(true);
  });
});
