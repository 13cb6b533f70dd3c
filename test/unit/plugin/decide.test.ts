import { expect } from 'chai';
import fc from 'fast-check';
import { decideBudget, decideFromBudgetFields, isClosingRequest, planEffect } from '../../../plugin/decide';
import { CLOSE_ACTIONS, type GateDecision } from '../../../types/permit';
import { budgetFields, budgetRecord, DEFAULT_POLICY, plan, upstreamBudgetFields } from '../../support/gate-fixtures';

const NOW_MS = 1_764_000_000_000;
const NOW_S = NOW_MS / 1000;

function decideAt(overrides: Parameters<typeof budgetRecord>[0], request = plan(), policy = DEFAULT_POLICY): GateDecision {
  return decideBudget(request, budgetRecord(overrides, NOW_MS), NOW_MS, policy);
}

function fromFields(fields: Record<string, string>, request = plan(), policy = DEFAULT_POLICY): GateDecision {
  return decideFromBudgetFields(request, fields, NOW_MS, policy);
}

describe('isClosingRequest', () => {
  it('treats reduceOnly and every close action as closing, and other actions as not', () => {
    expect(isClosingRequest(plan({ reduceOnly: true }))).to.equal(true);
    for (const action of ['FULL_CLOSE_PROPOSED', 'PARTIAL_25', 'PARTIAL_50', 'PARTIAL_75', 'CLOSE', 'REDUCE']) {
      expect(isClosingRequest(plan({ action })), action).to.equal(true);
    }
    expect(CLOSE_ACTIONS.size).to.equal(6);
    expect(isClosingRequest(plan({ action: 'OPEN' }))).to.equal(false);
    expect(isClosingRequest(plan({ action: 'OPEN', reduceOnly: false }))).to.equal(false);
  });
});

describe('isClosingRequest and an inherited reduceOnly', () => {
  it('ignores a reduceOnly the request inherits (a polluted Object.prototype)', () => {
    const proto = Object.prototype as { reduceOnly?: boolean };
    proto.reduceOnly = true;
    try {
      expect(isClosingRequest(plan())).to.equal(false);
      expect(isClosingRequest(plan({ reduceOnly: true }))).to.equal(true);
    } finally {
      delete proto.reduceOnly;
    }
  });
});

describe('planEffect', () => {
  const long = (amt: number, price = 100) => budgetRecord({ position_amt: amt, position_notional_usd: Math.abs(amt) * price, position_price: price }, NOW_MS);

  it('counts a SELL smaller than a long position as reducing, projecting the remainder at position_price', () => {
    expect(planEffect(plan({ side: 'SELL', qty: 0.25 }), long(1))).to.deep.equal({ reducing: true, projectedNotionalUsd: 75 });
  });

  it('counts a BUY on a short position as reducing', () => {
    expect(planEffect(plan({ side: 'BUY', qty: 0.5 }), long(-1))).to.deep.equal({ reducing: true, projectedNotionalUsd: 50 });
  });

  it('counts a flip that ends larger (long 1, SELL 3) as increasing, projecting |1 - 3| * price', () => {
    expect(planEffect(plan({ side: 'SELL', qty: 3 }), long(1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 200 });
  });

  it('counts a flip to the same size (long 1, SELL 2) as reducing: |1 - 2| <= |1|', () => {
    expect(planEffect(plan({ side: 'SELL', qty: 2 }), long(1)).reducing).to.equal(true);
  });

  it('counts any plan from flat as increasing, whichever side', () => {
    expect(planEffect(plan({ side: 'BUY', qty: 2 }), long(0))).to.deep.equal({ reducing: false, projectedNotionalUsd: 200 });
    expect(planEffect(plan({ side: 'SELL', qty: 2 }), long(0))).to.deep.equal({ reducing: false, projectedNotionalUsd: 200 });
  });

  it('counts a BUY on a long position as increasing', () => {
    expect(planEffect(plan({ side: 'BUY', qty: 1 }), long(1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 200 });
  });

  it('judges side + notionalUsd on the signed position notional', () => {
    expect(planEffect(plan({ side: 'SELL', qty: undefined, notionalUsd: 40 }), long(1))).to.deep.equal({ reducing: true, projectedNotionalUsd: 60 });
    expect(planEffect(plan({ side: 'BUY', qty: undefined, notionalUsd: 40 }), long(1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 140 });
    expect(planEffect(plan({ side: 'BUY', qty: undefined, notionalUsd: 40 }), long(-1))).to.deep.equal({ reducing: true, projectedNotionalUsd: 60 });
    expect(planEffect(plan({ side: 'SELL', qty: undefined, notionalUsd: 250 }), long(1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 150 });
  });

  it('counts a plan without a side as increasing: current notional plus its size', () => {
    expect(planEffect(plan({ side: undefined, qty: undefined, notionalUsd: 40 }), long(-1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 140 });
    expect(planEffect(plan({ side: undefined, qty: 0.5 }), long(-1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 150 });
  });

  it('counts a plan without a size as increasing, projecting the current notional', () => {
    expect(planEffect(plan({ side: 'SELL', qty: undefined }), long(1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 100 });
    expect(planEffect(plan({ side: undefined, qty: undefined }), long(1))).to.deep.equal({ reducing: false, projectedNotionalUsd: 100 });
  });

  it('judges direction by sign first: a BUY on a long or flat position and a SELL on a short or flat one always increase', () => {
    // 0.5 + 1e-17 === 0.5 and 1e300 + 1 === 1e300 in floating point: |after| <= |before| would call these reductions.
    expect(planEffect(plan({ side: 'BUY', qty: 1e-17 }), long(0.5)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'BUY', qty: 1 }), long(1e300, 1e-300)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'SELL', qty: 1e-17 }), long(-0.5)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'SELL', qty: 1 }), long(-1e300, 1e-300)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'BUY', qty: 1e-300 }), long(0)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'BUY', qty: undefined, notionalUsd: 1e-12 }), long(0.5)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'SELL', qty: undefined, notionalUsd: 1e-12 }), long(-0.5)).reducing).to.equal(false);
  });

  it('counts a move against the position as reducing exactly while it ends no larger, even where the sum would overflow', () => {
    expect(planEffect(plan({ side: 'SELL', qty: 1e-17 }), long(0.5)).reducing).to.equal(true);
    expect(planEffect(plan({ side: 'SELL', qty: 1 }), long(0.5)).reducing).to.equal(true);
    expect(planEffect(plan({ side: 'SELL', qty: 1.0000001 }), long(0.5)).reducing).to.equal(false);
    expect(planEffect(plan({ side: 'BUY', qty: 1.7e308 }), long(-1e308, 1e-300)).reducing).to.equal(true);
  });

  it('never counts a move with the position or from flat as reducing, and always counts a move against it of at most its size as reducing (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.double({ noNaN: true, noDefaultInfinity: true, min: Number.MIN_VALUE }),
        fc.constantFrom('BUY' as const, 'SELL' as const),
        (amt, qty, side) => {
          const { reducing } = planEffect(plan({ side, qty }), budgetRecord({ position_amt: amt, position_notional_usd: Math.abs(amt), position_price: 1 }, NOW_MS));
          const against = side === 'BUY' ? amt < 0 : amt > 0;
          if (!against) expect(reducing).to.equal(false);
          else if (qty <= Math.abs(amt)) expect(reducing).to.equal(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reads only the request\'s own side, qty and notionalUsd, never inherited ones', () => {
    const inherited = Object.assign(Object.create({ side: 'SELL', qty: 0.5 }) as object, { planId: 'p', symbol: 'ETHUSDT', action: 'OPEN' });
    expect(planEffect(inherited as ReturnType<typeof plan>, long(1)).reducing).to.equal(false);
  });

  it('without position_price falls back to the notional path, else to the current notional', () => {
    const noPrice = budgetRecord({ position_amt: 0, position_notional_usd: 0, position_price: undefined }, NOW_MS);
    expect(planEffect(plan({ side: 'BUY', qty: 1, notionalUsd: 900 }), noPrice)).to.deep.equal({ reducing: false, projectedNotionalUsd: 900 });
    expect(planEffect(plan({ side: 'BUY', qty: 1 }), noPrice)).to.deep.equal({ reducing: false, projectedNotionalUsd: 0 });
  });
});

describe('decideBudget', () => {
  it('allows a plan inside the budget as within_budget, enforced under enforce, with the numbers behind it', () => {
    expect(decideAt({}, plan({ qty: 0.3 }))).to.deep.equal({
      allow: true,
      reason: 'within_budget',
      enforced: true,
      failOpen: false,
      wouldBlock: false,
      mode: 'enforce',
      budgetUsd: 1348,
      positionNotionalUsd: 1000,
      projectedNotionalUsd: 1300,
    });
  });

  it('reports within_budget as not enforced under shadow', () => {
    const decision = decideAt({ mode: 'shadow' }, plan({ qty: 0.3 }));
    expect(decision).to.include({ allow: true, reason: 'within_budget', enforced: false, mode: 'shadow', wouldBlock: false });
  });

  it('blocks a plan projected over budget under enforce (p28_budget_violation, projected_over_budget)', () => {
    expect(decideAt({}, plan({ qty: 0.4 }))).to.deep.equal({
      allow: false,
      reason: 'p28_budget_violation',
      enforced: true,
      failOpen: false,
      wouldBlock: true,
      mode: 'enforce',
      detail: 'projected_over_budget',
      budgetUsd: 1348,
      positionNotionalUsd: 1000,
      projectedNotionalUsd: 1400,
    });
  });

  it('allows the same plan under shadow as shadow_would_block', () => {
    expect(decideAt({ mode: 'shadow' }, plan({ qty: 0.4 }))).to.deep.equal({
      allow: true,
      reason: 'shadow_would_block',
      enforced: false,
      failOpen: false,
      wouldBlock: true,
      mode: 'shadow',
      detail: 'projected_over_budget',
      budgetUsd: 1348,
      positionNotionalUsd: 1000,
      projectedNotionalUsd: 1400,
    });
  });

  it('blocks an increasing plan inside the budget when the symbol violated within violationWindowMs', () => {
    const decision = decideAt({ last_violation_ts: NOW_S - 10 }, plan({ qty: 0.1 }));
    expect(decision).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'recent_violation', projectedNotionalUsd: 1100 });
  });

  it('ignores a violation older than violationWindowMs (exactly the window is old)', () => {
    expect(decideAt({ last_violation_ts: NOW_S - 31 }).reason).to.equal('within_budget');
    expect(decideAt({ last_violation_ts: NOW_S - 30 }).reason).to.equal('within_budget');
    expect(decideAt({ last_violation_ts: NOW_S - 29.999 }).reason).to.equal('p28_budget_violation');
    const wider = { ...DEFAULT_POLICY, violationWindowMs: 120000 };
    expect(decideAt({ last_violation_ts: NOW_S - 60 }, plan(), wider).detail).to.equal('recent_violation');
  });

  it('names projected_over_budget when both a recent violation and the projection hold', () => {
    expect(decideAt({ last_violation_ts: NOW_S - 1 }, plan({ qty: 0.4 })).detail).to.equal('projected_over_budget');
  });

  it('always allows a reducing plan, even over budget with a recent violation under enforce', () => {
    const decision = decideAt(
      { position_amt: 0.5, position_price: 100000, position_notional_usd: 50000, over_budget_usd: 48652, last_violation_ts: NOW_S },
      plan({ side: 'SELL', qty: 0.1 }),
    );
    expect(decision).to.deep.equal({
      allow: true,
      reason: 'reduce_only',
      enforced: true,
      failOpen: false,
      wouldBlock: false,
      mode: 'enforce',
      budgetUsd: 1348,
      positionNotionalUsd: 50000,
      projectedNotionalUsd: 40000,
    });
  });

  it('blocks new increases on the guide Test 1 position (0.5 BTC at 100K against a 1348 budget)', () => {
    const overBudget = { position_amt: 0.5, position_price: 100000, position_notional_usd: 50000, over_budget_usd: 48652 };
    expect(decideAt(overBudget, plan({ side: 'BUY', qty: 0.001 }))).to.include({ allow: false, projectedNotionalUsd: 50100 });
    expect(decideAt(overBudget, plan({ side: undefined, qty: undefined }))).to.include({ allow: false, projectedNotionalUsd: 50000 });
  });

  it('blocks a flip that ends over budget, and judges a plan from flat on its own size', () => {
    const flip = decideAt({}, plan({ side: 'SELL', qty: 3 }));
    expect(flip).to.include({ allow: false, reason: 'p28_budget_violation', projectedNotionalUsd: 2000 });
    const flat = { position_amt: 0, position_notional_usd: 0 };
    expect(decideAt(flat, plan({ side: 'SELL', qty: 1 }))).to.include({ reason: 'within_budget', projectedNotionalUsd: 1000 });
    expect(decideAt(flat, plan({ side: 'SELL', qty: 2 }))).to.include({ reason: 'p28_budget_violation', projectedNotionalUsd: 2000 });
  });

  it('under forceShadow treats an enforce hash as shadow: shadow_would_block, never a block', () => {
    const decision = decideAt({}, plan({ qty: 0.4 }), { ...DEFAULT_POLICY, forceShadow: true });
    expect(decision).to.include({ allow: true, reason: 'shadow_would_block', mode: 'shadow', enforced: false, wouldBlock: true });
  });

  it('never blocks outside enforce, never blocks a reducing plan, and blocks only with p28_budget_violation (property)', () => {
    const amount = fc.double({ min: -1000, max: 1000, noNaN: true });
    const size = fc.double({ min: 1e-6, max: 1000, noNaN: true });
    fc.assert(
      fc.property(
        amount,
        fc.double({ min: 0.01, max: 1e5, noNaN: true }),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.constantFrom('BUY' as const, 'SELL' as const, undefined),
        fc.option(size, { nil: undefined }),
        fc.option(size, { nil: undefined }),
        fc.constantFrom('shadow' as const, 'enforce' as const),
        fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
        (amt, price, budget, side, qty, notionalUsd, mode, violationAgeS) => {
          const record = budgetRecord(
            {
              position_amt: amt,
              position_price: price,
              position_notional_usd: Math.abs(amt) * price,
              budget_usd: budget,
              mode,
              last_violation_ts: violationAgeS === undefined ? undefined : NOW_S - violationAgeS,
            },
            NOW_MS,
          );
          const request = plan({ side, qty, notionalUsd });
          const decision = decideBudget(request, record, NOW_MS, DEFAULT_POLICY);
          const reducing = side !== undefined && qty !== undefined && Math.abs(amt + (side === 'BUY' ? qty : -qty)) <= Math.abs(amt);
          if (!decision.allow) {
            expect(decision.reason).to.equal('p28_budget_violation');
            expect(mode).to.equal('enforce');
            expect(reducing).to.equal(false);
          }
          if (reducing) expect(decision.reason).to.equal('reduce_only');
          // The only fail-open on a fresh hash: a plan that says nothing of its size and would otherwise pass.
          if (decision.failOpen) {
            expect(decision).to.include({ reason: 'invalid_request', detail: 'plan_size_unknown', allow: true });
            expect([qty, notionalUsd]).to.deep.equal([undefined, undefined]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('a plan whose size the gate cannot tell', () => {
  // A flat symbol the market engine tracks but the fund never held: its hash has no price.
  const flatNoPrice = { position_amt: 0, position_notional_usd: 0, over_budget_usd: 0, position_price: undefined };

  it('fails open, counted as invalid_request (plan_size_unknown), when an opening plan gives qty but the hash no price', () => {
    const decision = decideAt(flatNoPrice, plan({ action: 'OPEN', side: 'BUY', qty: 5 }));
    expect(decision).to.include({ allow: true, failOpen: true, reason: 'invalid_request', detail: 'plan_size_unknown', mode: 'enforce' });
  });

  it('judges the same opening plan against the budget once it gives notionalUsd', () => {
    expect(decideAt(flatNoPrice, plan({ action: 'OPEN', side: 'BUY', qty: undefined, notionalUsd: 2000 }))).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget' });
    expect(decideAt(flatNoPrice, plan({ action: 'OPEN', side: 'BUY', qty: undefined, notionalUsd: 200 }))).to.include({ allow: true, reason: 'within_budget', failOpen: false });
  });

  it('still blocks a sizeless plan on a position already over budget', () => {
    const over = { position_amt: 2, position_notional_usd: 2000, position_price: undefined, over_budget_usd: 652 };
    expect(decideAt(over, plan({ side: 'BUY', qty: undefined }))).to.include({ allow: false, reason: 'p28_budget_violation' });
  });
});

describe('an unknown position (position_status=invalid)', () => {
  const invalid = { position_status: 'invalid' as const, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 };

  it('blocks under enforce a plan whose own notional exceeds the budget, from notionalUsd or qty * position_price', () => {
    expect(decideAt(invalid, plan({ qty: undefined, notionalUsd: 1500 }))).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget,position_unknown', projectedNotionalUsd: 1500 });
    expect(decideAt(invalid, plan({ qty: 2 }))).to.include({ allow: false, reason: 'p28_budget_violation', projectedNotionalUsd: 2000 });
  });

  it('allows a plan whose own notional fits, and judges a SELL as increasing (the position cannot say it reduces)', () => {
    expect(decideAt(invalid, plan({ qty: 1 }))).to.include({ allow: true, reason: 'within_budget', projectedNotionalUsd: 1000 });
    expect(decideAt(invalid, plan({ side: 'SELL', qty: 2 }))).to.include({ allow: false, reason: 'p28_budget_violation' });
  });

  it('reports the same plan as shadow_would_block under shadow', () => {
    expect(decideAt({ ...invalid, mode: 'shadow' }, plan({ qty: 2 }))).to.include({ allow: true, reason: 'shadow_would_block', wouldBlock: true });
  });

  it('reads the status from the hash fields and refuses an unknown one as invalid_budget_data', () => {
    expect(fromFields(budgetFields(invalid, NOW_MS), plan({ qty: 2 }))).to.include({ allow: false, reason: 'p28_budget_violation' });
    expect(fromFields({ ...budgetFields({}, NOW_MS), position_status: 'maybe' })).to.include({ reason: 'invalid_budget_data', detail: 'position_status' });
  });
});

describe('a position the worker could not vouch for (stale, unknown) or a hash without position fields', () => {
  for (const status of ['stale', 'unknown'] as const) {
    const unknown = { position_status: status, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 };
    it(`judges an increasing plan by its own notional when position_status=${status}, naming position_unknown`, () => {
      expect(decideAt(unknown, plan({ qty: undefined, notionalUsd: 1500 }))).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget,position_unknown' });
      const fits = decideAt(unknown, plan({ qty: undefined, notionalUsd: 900 }));
      expect(fits).to.include({ allow: true, reason: 'within_budget', detail: 'position_unknown', projectedNotionalUsd: 900 });
      expect(fits).to.not.have.property('positionNotionalUsd');
    });

    it(`never takes a SELL on a ${status} position for a reduction`, () => {
      expect(decideAt(unknown, plan({ side: 'SELL', qty: 2 }))).to.include({ allow: false, reason: 'p28_budget_violation' });
    });
  }

  const upstreamFields = (over: Record<string, string> = {}): Record<string, string> => upstreamBudgetFields('ETHUSDT', NOW_S - 2, over);

  it('judges an upstream 10-field hash instead of rejecting it: a plan over the budget is blocked, naming position_unknown', () => {
    expect(fromFields(upstreamFields(), plan({ qty: undefined, notionalUsd: 1500 }))).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget,position_unknown', budgetUsd: 1348 });
  });

  it('allows a plan that fits on an upstream 10-field hash, and reports it under shadow as the same judgement', () => {
    expect(fromFields(upstreamFields(), plan({ qty: undefined, notionalUsd: 1000 }))).to.include({ allow: true, reason: 'within_budget', detail: 'position_unknown' });
    expect(fromFields(upstreamFields({ mode: 'shadow' }), plan({ qty: undefined, notionalUsd: 1500 }))).to.include({ allow: true, reason: 'shadow_would_block', detail: 'projected_over_budget,position_unknown' });
  });

  it('blocks on a recent violation in a 10-field hash that carries last_violation_ts', () => {
    expect(fromFields(upstreamFields({ last_violation_ts: String(NOW_S - 5) }), plan({ qty: undefined, notionalUsd: 10 }))).to.include({ allow: false, detail: 'recent_violation,position_unknown' });
  });

  it('still fails open on a stale 10-field hash, and on a plan it cannot size', () => {
    expect(fromFields(upstreamFields({ timestamp: String(NOW_S - 3600) }), plan({ qty: undefined, notionalUsd: 10 }))).to.include({ reason: 'stale_budget_data' });
    expect(fromFields(upstreamFields(), plan({ qty: 1 }))).to.include({ reason: 'invalid_request', detail: 'plan_size_unknown,position_unknown', failOpen: true });
  });
});

describe('decideFromBudgetFields', () => {
  it('fails open with no_budget_data on an empty hash (no key), mode null', () => {
    expect(fromFields({})).to.deep.equal({ allow: true, reason: 'no_budget_data', enforced: false, failOpen: true, wouldBlock: false, mode: null });
  });

  it('decides from a valid, fresh hash exactly as decideBudget does', () => {
    const fields = budgetFields({}, NOW_MS);
    const request = plan({ qty: 0.4 });
    expect(fromFields(fields, request)).to.deep.equal(decideBudget(request, budgetRecord({}, NOW_MS), NOW_MS, DEFAULT_POLICY));
  });

  const malformed: Array<[field: string, value: string]> = [
    ['symbol', 'btc-usdt'],
    ['budget_usd', 'abc'],
    ['budget_usd', ''],
    ['budget_usd', '-1'],
    ['stress_factor', '1.5'],
    ['equity_usd', 'NaN'],
    ['portfolio_heat', '2'],
    ['cluster_stress', '-0.1'],
    ['vol_regime', 'HIGH'],
    ['mode', 'ENFORCE'],
    ['mode', 'off'],
    ['timestamp', 'yesterday'],
    ['base_risk_pct', '0'],
    ['position_amt', '1e999'],
    ['position_notional_usd', '-5'],
    ['over_budget_usd', '0x10'],
    ['last_violation_ts', 'soon'],
    ['position_price', '0'],
  ];
  for (const [field, value] of malformed) {
    it(`fails open with invalid_budget_data naming ${field} when it is ${JSON.stringify(value)}`, () => {
      const decision = fromFields({ ...budgetFields({ last_violation_ts: NOW_S - 100 }, NOW_MS), [field]: value }, plan({ qty: 0.4 }));
      expect(decision).to.include({ allow: true, reason: 'invalid_budget_data', failOpen: true, wouldBlock: false, enforced: false, detail: field });
    });
  }

  for (const field of ['symbol', 'budget_usd', 'mode', 'timestamp']) {
    it(`fails open with invalid_budget_data naming ${field} when it is missing`, () => {
      const fields = budgetFields({}, NOW_MS);
      delete fields[field];
      expect(fromFields(fields, plan({ qty: 0.4 }))).to.include({ reason: 'invalid_budget_data', detail: field });
    });
  }

  it('names every malformed field in one detail', () => {
    const fields = { ...budgetFields({}, NOW_MS), budget_usd: 'x', mode: 'both' };
    expect(fromFields(fields).detail).to.equal('budget_usd,mode');
  });

  it('reports the mode of an invalid hash when the mode field itself is valid, else null', () => {
    expect(fromFields({ ...budgetFields({ mode: 'enforce' }, NOW_MS), budget_usd: 'x' }).mode).to.equal('enforce');
    expect(fromFields({ ...budgetFields({}, NOW_MS), mode: 'panic' }).mode).to.equal(null);
  });

  it('fails open with invalid_budget_data when the hash names another symbol', () => {
    expect(fromFields(budgetFields({ symbol: 'BTCUSDT' }, NOW_MS))).to.include({ reason: 'invalid_budget_data', detail: 'symbol' });
  });

  it('fails open with stale_budget_data (stale) when the timestamp is older than staleAfterMs', () => {
    const stale = fromFields(budgetFields({ timestamp: NOW_S - 61 }, NOW_MS), plan({ qty: 0.4 }));
    expect(stale).to.deep.equal({
      allow: true,
      reason: 'stale_budget_data',
      enforced: false,
      failOpen: true,
      wouldBlock: false,
      mode: 'enforce',
      detail: 'stale',
      budgetUsd: 1348,
      positionNotionalUsd: 1000,
    });
    expect(fromFields(budgetFields({ timestamp: NOW_S - 59 }, NOW_MS), plan({ qty: 0.4 })).reason).to.equal('p28_budget_violation');
    expect(fromFields(budgetFields({ timestamp: NOW_S - 11 }, NOW_MS), plan(), { ...DEFAULT_POLICY, staleAfterMs: 10000 }).detail).to.equal('stale');
  });

  it('fails open with stale_budget_data (timestamp_in_future) beyond maxClockSkewMs, and tolerates less', () => {
    expect(fromFields(budgetFields({ timestamp: NOW_S + 6 }, NOW_MS))).to.include({ reason: 'stale_budget_data', detail: 'timestamp_in_future' });
    expect(fromFields(budgetFields({ timestamp: NOW_S + 4 }, NOW_MS), plan({ qty: 0.4 })).reason).to.equal('p28_budget_violation');
  });

  it('fails open with invalid_budget_data when last_violation_ts lies beyond maxClockSkewMs in the future', () => {
    expect(fromFields(budgetFields({ last_violation_ts: NOW_S + 3600 }, NOW_MS))).to.include({
      reason: 'invalid_budget_data',
      detail: 'last_violation_ts',
    });
    expect(fromFields(budgetFields({ last_violation_ts: NOW_S + 2 }, NOW_MS)).detail).to.equal('recent_violation');
  });
});
