import { expect } from 'chai';
import fc from 'fast-check';
import { BudgetInputError, computeBudget, type BudgetInputs, type BudgetParams } from '../../../lib/engine/compute-budget';

const GUIDE_PARAMS: BudgetParams = {
  baseRiskPct: 0.02,
  alphaHeat: 0.4,
  betaCluster: 0.4,
  gammaVol: 0.2,
  minBudgetUsd: 500,
  maxBudgetUsd: 10000,
};

const unit = fc.double({ min: 0, max: 1, noNaN: true });
const equity = fc.double({ min: 0, max: 1e9, noNaN: true });
const params = fc
  .record({
    baseRiskPct: fc.double({ min: 1e-6, max: 1, noNaN: true }),
    alphaHeat: unit,
    betaCluster: unit,
    gammaVol: unit,
    a: fc.double({ min: 0, max: 1e6, noNaN: true }),
    b: fc.double({ min: 0, max: 1e6, noNaN: true }),
  })
  .map(({ a, b, ...rest }) => ({ ...rest, minBudgetUsd: Math.min(a, b), maxBudgetUsd: Math.max(a, b) }));
const inputs = fc.record({ equityUsd: equity, portfolioHeat: unit, clusterStress: unit, volRegime: unit });

describe('computeBudget', () => {
  it('gives the guide Test 1 budget: equity 100000, heat 0.65, vol 0.33 -> stress 0.326, budget 1348', () => {
    const result = computeBudget({ equityUsd: 100000, portfolioHeat: 0.65, clusterStress: 0, volRegime: 0.33 }, GUIDE_PARAMS);
    expect(result).to.deep.equal({ baseBudgetUsd: 2000, stressFactor: 0.326, budgetUsd: 1348 });
  });

  it('gives the guide Test 2 budget: heat 0.15 -> stress 0.126, budget 1748', () => {
    const result = computeBudget({ equityUsd: 100000, portfolioHeat: 0.15, clusterStress: 0, volRegime: 0.33 }, GUIDE_PARAMS);
    expect(result).to.deep.equal({ baseBudgetUsd: 2000, stressFactor: 0.126, budgetUsd: 1748 });
  });

  it('clamps a small budget up to MIN_BUDGET_K', () => {
    const result = computeBudget({ equityUsd: 10000, portfolioHeat: 0.65, clusterStress: 0, volRegime: 0.33 }, GUIDE_PARAMS);
    expect(result.baseBudgetUsd).to.equal(200);
    expect(result.budgetUsd).to.equal(500);
  });

  it('clamps a large budget down to MAX_BUDGET_K', () => {
    const result = computeBudget({ equityUsd: 10_000_000, portfolioHeat: 0, clusterStress: 0, volRegime: 0 }, GUIDE_PARAMS);
    expect(result.baseBudgetUsd).to.equal(200000);
    expect(result.budgetUsd).to.equal(10000);
  });

  it('clamps stress to 1 when the weighted sum exceeds 1', () => {
    const heavy = { ...GUIDE_PARAMS, alphaHeat: 1, betaCluster: 1, gammaVol: 1, minBudgetUsd: 0 };
    const result = computeBudget({ equityUsd: 100000, portfolioHeat: 1, clusterStress: 1, volRegime: 1 }, heavy);
    expect(result.stressFactor).to.equal(1);
    expect(result.budgetUsd).to.equal(0);
  });

  it('rounds the budget to the cent and the stress to 1e-6', () => {
    const result = computeBudget({ equityUsd: 123456.789, portfolioHeat: 0.123456789, clusterStress: 0, volRegime: 0 }, GUIDE_PARAMS);
    expect(result.stressFactor).to.equal(0.049383);
    expect(result.budgetUsd).to.equal(2347.2); // 2469.13578 * 0.950617 = 2347.2035...
  });

  for (const [field, bad] of [
    ['equityUsd', Number.NaN],
    ['equityUsd', -1],
    ['equityUsd', Number.POSITIVE_INFINITY],
    ['portfolioHeat', 1.5],
    ['portfolioHeat', Number.NaN],
    ['clusterStress', -0.1],
    ['volRegime', Number.NEGATIVE_INFINITY],
  ] as const) {
    it(`rejects ${field} = ${bad} with a BudgetInputError naming the field`, () => {
      const input: BudgetInputs = { equityUsd: 100000, portfolioHeat: 0.5, clusterStress: 0, volRegime: 0.33, [field]: bad };
      expect(() => computeBudget(input, GUIDE_PARAMS)).to.throw(BudgetInputError, field);
    });
  }

  it('rejects MIN above MAX and a non-finite weight', () => {
    const good: BudgetInputs = { equityUsd: 1, portfolioHeat: 0, clusterStress: 0, volRegime: 0 };
    expect(() => computeBudget(good, { ...GUIDE_PARAMS, minBudgetUsd: 2, maxBudgetUsd: 1 })).to.throw(BudgetInputError, 'maxBudgetUsd');
    expect(() => computeBudget(good, { ...GUIDE_PARAMS, alphaHeat: Number.NaN })).to.throw(BudgetInputError, 'alphaHeat');
    expect(() => computeBudget(good, { ...GUIDE_PARAMS, baseRiskPct: 0 })).to.throw(BudgetInputError, 'baseRiskPct');
  });

  describe('properties over random inputs', () => {
    it('always returns a finite budget within [MIN, MAX] and stress within [0,1]', () => {
      fc.assert(
        fc.property(inputs, params, (i, p) => {
          const r = computeBudget(i, p);
          return (
            Number.isFinite(r.budgetUsd) &&
            r.budgetUsd >= p.minBudgetUsd &&
            r.budgetUsd <= p.maxBudgetUsd &&
            r.stressFactor >= 0 &&
            r.stressFactor <= 1
          );
        }),
        { numRuns: 2000 },
      );
    });

    for (const field of ['portfolioHeat', 'clusterStress', 'volRegime'] as const) {
      it(`is monotone non-increasing in ${field}`, () => {
        fc.assert(
          fc.property(inputs, params, unit, unit, (i, p, x, y) => {
            const lo = computeBudget({ ...i, [field]: Math.min(x, y) }, p);
            const hi = computeBudget({ ...i, [field]: Math.max(x, y) }, p);
            return hi.budgetUsd <= lo.budgetUsd && hi.stressFactor >= lo.stressFactor;
          }),
          { numRuns: 1000 },
        );
      });
    }

    it('never returns NaN: any non-finite input throws instead', () => {
      const anyNumber = fc.oneof(fc.double(), fc.constant(Number.NaN), fc.constant(Number.POSITIVE_INFINITY));
      fc.assert(
        fc.property(anyNumber, anyNumber, anyNumber, anyNumber, (e, h, c, v) => {
          try {
            const r = computeBudget({ equityUsd: e, portfolioHeat: h, clusterStress: c, volRegime: v }, GUIDE_PARAMS);
            return Number.isFinite(r.budgetUsd) && Number.isFinite(r.stressFactor);
          } catch (error) {
            return error instanceof BudgetInputError;
          }
        }),
        { numRuns: 2000 },
      );
    });
  });
});
