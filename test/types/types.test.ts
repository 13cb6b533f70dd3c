import { expect } from 'chai';
import fc from 'fast-check';
import { BUDGET_HASH_FIELDS, BudgetHash, budgetFieldsFromValues, encodeBudgetHash, readBudgetHash, type BudgetHash as BudgetRecord } from '../../types/budget-hash';
import { ClusterStressHash, MarketStateHash, PortfolioStateHash, PositionSnapshotHash, volRegimeOf } from '../../types/inputs';
import { GateReason, PermitRequest, readPermitRequest } from '../../types/permit';
import { encodeViolationEvent, ViolationStreamEntry } from '../../types/violation-event';
import { formatIssues, MAX_DECIMAL_CHARS, numericString, parseDecimal, readDecimal } from '../../types/wire-number';
import { budgetFixture } from '../support/budget-fixture';
import { encodeWorkerHeartbeat, WorkerHeartbeat } from '../../types/worker-heartbeat';

const sampleBudget: BudgetRecord = budgetFixture();

describe('wire numbers', () => {
  const n = numericString({ min: 0 });
  for (const bad of ['', '   ', 'NaN', 'Infinity', '-Infinity', '0x10', '1e999', '12abc', 'abc', '-1', '1,5']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(n.safeParse(bad).success).to.equal(false);
    });
  }
  for (const [good, value] of [['0', 0], [' 42 ', 42], ['1.5', 1.5], ['.5', 0.5], ['1e3', 1000], ['+7', 7]] as const) {
    it(`parses ${JSON.stringify(good)} as ${value}`, () => {
      expect(n.parse(good)).to.equal(value);
    });
  }
});

describe('input hashes', () => {
  it('parses a portfolio state and rejects negative equity with a readable issue', () => {
    expect(PortfolioStateHash.parse({ equity_usd: '100000', drawdown: '0.05', timestamp: '1764000000' })).to.deep.equal({
      equity_usd: 100000,
      drawdown: 0.05,
      timestamp: 1764000000,
    });
    const result = PortfolioStateHash.safeParse({ equity_usd: '-5', timestamp: '1' });
    expect(result.success).to.equal(false);
    expect(formatIssues(result.error!)).to.deep.equal(['equity_usd: expected a number >= 0, got "-5"']);
  });

  it('rejects a portfolio state without a timestamp', () => {
    expect(PortfolioStateHash.safeParse({ equity_usd: '100000' }).success).to.equal(false);
  });

  it('accepts a flat position without a price and refuses an open one without any price', () => {
    expect(PositionSnapshotHash.parse({ position_amt: '0' }).position_amt).to.equal(0);
    expect(PositionSnapshotHash.safeParse({ position_amt: '-0.5', entry_price: '0' }).success).to.equal(false);
    expect(PositionSnapshotHash.parse({ position_amt: '-0.5', entry_price: '100000', side: 'SHORT' })).to.deep.equal({
      position_amt: -0.5,
      entry_price: 100000,
      side: 'SHORT',
    });
  });

  it('bounds cluster stress to [0,1]', () => {
    expect(ClusterStressHash.parse({ stress: '0.4' }).stress).to.equal(0.4);
    expect(ClusterStressHash.safeParse({ stress: '1.2' }).success).to.equal(false);
  });

  it('maps vol regimes by name, number and sigma band, defaulting to NORMAL', () => {
    const regime = (raw: Record<string, string>) => volRegimeOf(MarketStateHash.parse(raw)).value;
    expect(regime({ vol_regime: 'LOW' })).to.equal(0);
    expect(regime({ vol_regime: 'normal' })).to.equal(0.33);
    expect(regime({ vol_regime: 'HIGH' })).to.equal(0.67);
    expect(regime({ vol_regime: 'EXTREME' })).to.equal(1);
    expect(regime({ vol_regime: '0.5' })).to.equal(0.5);
    expect(regime({ sigma: '0.031' })).to.equal(1);
    expect(regime({ sigma: '0.021' })).to.equal(0.67);
    expect(regime({ sigma: '0.004' })).to.equal(0);
    expect(regime({ sigma: '0.01' })).to.equal(0.33);
    expect(regime({})).to.equal(0.33);
    expect(volRegimeOf(undefined)).to.deep.equal({ value: 0.33, source: 'default' });
  });

  it('maps the live system\'s regime names with _VOL and a further suffix, in any case', () => {
    const regime = (raw: string) => volRegimeOf(MarketStateHash.parse({ vol_regime: raw })).value;
    expect(regime('LOW_VOL')).to.equal(0);
    expect(regime('normal_vol')).to.equal(0.33);
    expect(regime('HIGH_VOL')).to.equal(0.67);
    expect(regime('high_vol_trending')).to.equal(0.67);
    expect(regime('EXTREME_VOL')).to.equal(1);
    expect(regime(' Extreme_Vol_Spike_2 ')).to.equal(1);
  });

  it('rejects names that only look like a regime, so they fall to sigma', () => {
    for (const raw of ['HIGHVOL', 'HIGH_TRENDING', 'VERY_HIGH', 'HIGH_VOL_', 'HIGH__VOL', 'EXTREME_VOLATILE']) {
      expect(MarketStateHash.safeParse({ vol_regime: raw }).success, raw).to.equal(false);
    }
  });

  it('rejects an unknown vol regime name and a cluster id that is not key-safe', () => {
    expect(MarketStateHash.safeParse({ vol_regime: 'CALM' }).success).to.equal(false);
    expect(MarketStateHash.safeParse({ vol_regime: '1.5' }).success).to.equal(false);
    expect(MarketStateHash.safeParse({ cluster_id: 'a:*' }).success).to.equal(false);
  });
});

describe('BudgetHash', () => {
  it('round-trips through the strings written to Redis', () => {
    const fields = encodeBudgetHash(sampleBudget);
    expect(fields.budget_usd).to.equal('1348');
    expect(fields.mode).to.equal('shadow');
    expect(BudgetHash.parse(fields)).to.deep.equal(sampleBudget);
  });

  it('round-trips any valid record (property)', () => {
    const unit = fc.double({ min: 0, max: 1, noNaN: true });
    const money = fc.double({ min: 0, max: 1e12, noNaN: true });
    fc.assert(
      fc.property(
        fc.record({
          symbol: fc.stringMatching(/^[A-Z0-9]{1,32}$/),
          budget_usd: money,
          stress_factor: unit,
          equity_usd: money,
          portfolio_heat: unit,
          cluster_stress: unit,
          vol_regime: unit,
          mode: fc.constantFrom('shadow' as const, 'enforce' as const),
          timestamp: fc.integer({ min: 0, max: 4e9 }),
          base_risk_pct: fc.double({ min: 1e-6, max: 1, noNaN: true }),
          position_amt: fc.double({ min: -1e9, max: 1e9, noNaN: true }).map((x) => x + 0), // -0 is written as "0"
          position_notional_usd: money,
          over_budget_usd: money,
          position_status: fc.constantFrom('ok' as const, 'invalid' as const),
        }),
        (record) => {
          expect(BudgetHash.parse(encodeBudgetHash(record))).to.deep.equal(record);
        },
      ),
    );
  });

  it('leaves absent optional fields out of the hash', () => {
    const { last_violation_ts: _a, position_price: _b, ...rest } = sampleBudget;
    const fields = encodeBudgetHash(rest);
    expect(fields).not.to.have.property('last_violation_ts');
    expect(fields).not.to.have.property('position_price');
  });

  it('refuses to encode a NaN', () => {
    expect(() => encodeBudgetHash({ ...sampleBudget, budget_usd: Number.NaN })).to.throw(RangeError, 'budget_usd');
  });

  for (const [field, bad] of [
    ['budget_usd', 'NaN'],
    ['budget_usd', '-1'],
    ['stress_factor', '1.5'],
    ['mode', 'block'],
    ['timestamp', ''],
    ['symbol', 'btc'],
    ['position_amt', 'x'],
    ['last_violation_ts', 'yesterday'],
  ] as const) {
    it(`rejects ${field}=${JSON.stringify(bad)}`, () => {
      const result = BudgetHash.safeParse({ ...encodeBudgetHash(sampleBudget), [field]: bad });
      expect(result.success).to.equal(false);
      expect(result.error!.issues[0]!.path).to.deep.equal([field]);
    });
  }
});

describe('violation event', () => {
  it('encodes flat fields plus the same object as json, readable by the stream schema', () => {
    const event = {
      event_type: 'budget.violation' as const,
      symbol: 'BTCUSDT',
      position_notional: 50000,
      budget_usd: 1348,
      over_budget: 48652,
      mode: 'shadow' as const,
      timestamp: 1764000000,
    };
    const flat = encodeViolationEvent(event);
    const record = Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]));
    expect(JSON.parse(record.json!)).to.deep.equal(event);
    expect(ViolationStreamEntry.parse(record)).to.include({ symbol: 'BTCUSDT', over_budget: 48652, budget_usd: 1348 });
  });
});

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

describe('fast readers agree with the schemas', () => {
  // zod keeps an optional key whose value is undefined; the readers leave it out. Same values.
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const tricky = fc.constantFrom('', ' ', 'NaN', 'Infinity', '-1', '0', '1', '1.5', '0x10', '1e3', ' 7 ', 'abc', 'shadow', 'enforce', 'BTCUSDT', 'btc', '-0', '.5', '1e999', 'ok', 'invalid');

  it('readBudgetHash gives the same verdict and output as BudgetHash.safeParse (property)', () => {
    const fieldNames = [...Object.keys(BudgetHash.shape), 'extra'];
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom(...fieldNames), fc.oneof(tricky, fc.string(), fc.constant(undefined as unknown as string))),
        fc.boolean(),
        (mutation, startValid) => {
          const fields: Record<string, unknown> = { ...(startValid ? encodeBudgetHash(sampleBudget) : {}), ...mutation };
          const slow = BudgetHash.safeParse(fields);
          const fast = readBudgetHash(fields);
          if (slow.success) expect(fast && defined(fast)).to.deep.equal(defined(slow.data));
          else expect(fast).to.equal(undefined);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('readDecimal gives exactly what parseDecimal gives, for any string (property)', () => {
    const numberish = fc.oneof(
      fc.double().map(String),
      fc.stringMatching(/^\s{0,2}[+-]?\d{0,4}\.?\d{0,4}([eE][+-]?\d{0,4})?\s{0,2}$/),
      fc.string({ unit: fc.constantFrom('0', '1', '9', '.', 'e', 'E', '+', '-', ' ', '\u00a0', '\ufeff', 'x', '_') }),
      fc.string(),
    );
    fc.assert(
      fc.property(numberish, (raw) => {
        expect(Object.is(readDecimal(raw), parseDecimal(raw)), raw).to.equal(true);
      }),
      { numRuns: 20000 },
    );
  });

  it(`rejects a number longer than ${MAX_DECIMAL_CHARS} characters in the schema and the reader alike`, () => {
    const long = `1${'0'.repeat(MAX_DECIMAL_CHARS)}`;
    expect(Number.isNaN(readDecimal(long))).to.equal(true);
    const fields = { ...encodeBudgetHash(sampleBudget), budget_usd: long };
    expect(readBudgetHash(fields)).to.equal(undefined);
    const parsed = BudgetHash.safeParse(fields);
    expect(parsed.success).to.equal(false);
    // The message quotes the value cut short, never the whole of a huge field.
    const huge = BudgetHash.safeParse({ ...fields, budget_usd: '9'.repeat(1_000_000) });
    expect(huge.success || huge.error.issues[0]!.message.length).to.be.below(200);
  });

  it('reads the HMGET reply of BUDGET_HASH_FIELDS back into the hash, leaving absent fields out', () => {
    const fields = encodeBudgetHash(sampleBudget);
    expect(BUDGET_HASH_FIELDS).to.have.members(Object.keys(BudgetHash.shape));
    const reply = BUDGET_HASH_FIELDS.map((name) => (name === 'last_violation_ts' ? null : (fields[name] ?? null)));
    const { last_violation_ts: _absent, ...rest } = fields;
    expect(budgetFieldsFromValues(reply)).to.deep.equal(rest);
    expect(budgetFieldsFromValues(BUDGET_HASH_FIELDS.map(() => null))).to.deep.equal({});
  });

  it('readBudgetHash reads a valid hash exactly as the schema does', () => {
    expect(readBudgetHash(encodeBudgetHash(sampleBudget))).to.deep.equal(sampleBudget);
  });

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

describe('WorkerHeartbeat', () => {
  it('round-trips through the strings written to Redis, epoch ms whole', () => {
    const fields = encodeWorkerHeartbeat({ last_success_ts: 1764000000123.4, leader: 'w1-42', symbols_written: 12, cycle_ms: 3.456 });
    expect(fields).to.deep.equal({ last_success_ts: '1764000000123', leader: 'w1-42', symbols_written: '12', cycle_ms: '3.5' });
    expect(WorkerHeartbeat.parse(fields)).to.deep.equal({ last_success_ts: 1764000000123, leader: 'w1-42', symbols_written: 12, cycle_ms: 3.5 });
  });

  it('rejects a heartbeat without a whole epoch ms or a leader', () => {
    expect(WorkerHeartbeat.safeParse({ last_success_ts: '1.5', leader: 'w1', symbols_written: '1', cycle_ms: '1' }).success).to.equal(false);
    expect(WorkerHeartbeat.safeParse({ last_success_ts: '1', leader: '', symbols_written: '1', cycle_ms: '1' }).success).to.equal(false);
  });
});
