import { expect } from 'chai';
import fc from 'fast-check';
import { GateReason, PermitRequest, readPermitRequest } from '../../../types/permit';

describe('PermitRequest and GateReason', () => {
  it('accepts a full plan and rejects a bad symbol or a negative qty', () => {
    expect(PermitRequest.safeParse({ planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.1 }).success).to.equal(true);
    expect(PermitRequest.safeParse({ planId: 'p1', symbol: 'BTC*', action: 'OPEN' }).success).to.equal(false);
    expect(PermitRequest.safeParse({ planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', qty: -1 }).success).to.equal(false);
    expect(PermitRequest.safeParse({ planId: '', symbol: 'BTCUSDT', action: 'OPEN' }).success).to.equal(false);
  });

  it('has exactly the reasons the contract names', () => {
    expect([...GateReason.options].sort()).to.deep.equal(
      [
        'p28_budget_violation',
        'within_budget',
        'reduce_only',
        'shadow_would_block',
        'gate_disabled',
        'no_budget_data',
        'stale_budget_data',
        'invalid_budget_data',
        'invalid_request',
        'redis_unavailable',
        'timeout',
        'breaker_open',
      ].sort(),
    );
  });
});

describe('readPermitRequest agrees with the PermitRequest schema', () => {
  // zod keeps an optional key whose value is undefined; the readers leave it out. Same values.
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

  it('readPermitRequest gives the same verdict and output as PermitRequest.safeParse (property)', () => {
    const value = fc.oneof(
      fc.constantFrom('BUY', 'SELL', 'buy', 'BTCUSDT', 'OPEN', '', 'x'.repeat(201), 'x'.repeat(64), 'x'.repeat(65), true, false, 0, -1, 0.5, Number.NaN, Infinity, null, undefined),
      fc.string(),
      fc.double(),
    );
    const keys = fc.constantFrom('planId', 'symbol', 'action', 'side', 'qty', 'notionalUsd', 'reduceOnly', 'other');
    const base = { planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.1 };
    fc.assert(
      fc.property(fc.dictionary(keys, value), fc.boolean(), (mutation, startValid) => {
        const req = { ...(startValid ? base : {}), ...mutation };
        const slow = PermitRequest.safeParse(req);
        const fast = readPermitRequest(req);
        if (slow.success) expect(fast && defined(fast)).to.deep.equal(defined(slow.data));
        else expect(fast).to.equal(undefined);
      }),
      { numRuns: 5000 },
    );
    for (const notAnObject of [null, undefined, 'BTCUSDT', 42, [base]]) {
      expect(PermitRequest.safeParse(notAnObject).success).to.equal(false);
      expect(readPermitRequest(notAnObject)).to.equal(undefined);
    }
  });

  it('readPermitRequest reads only own properties and gives undefined for a request that throws when read', () => {
    const proto = Object.prototype as { reduceOnly?: boolean; side?: string };
    proto.reduceOnly = true;
    proto.side = 'SELL';
    try {
      const read = readPermitRequest({ planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', qty: 1 });
      expect(read).to.not.equal(undefined);
      expect(Object.hasOwn(read!, 'reduceOnly')).to.equal(false);
      expect(Object.hasOwn(read!, 'side')).to.equal(false);
    } finally {
      delete proto.reduceOnly;
      delete proto.side;
    }
    const throwing = { planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', get qty(): number { throw new Error('boom'); } };
    expect(readPermitRequest(throwing)).to.equal(undefined);
    const trap = new Proxy({}, { getOwnPropertyDescriptor() { throw new Error('trap'); } });
    expect(readPermitRequest(trap)).to.equal(undefined);
  });
});
