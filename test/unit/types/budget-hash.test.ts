import { expect } from 'chai';
import fc from 'fast-check';
import { BUDGET_HASH_FIELDS, BudgetHash, budgetFieldsFromValues, encodeBudgetHash, readBudgetHash, type BudgetHash as BudgetRecord } from '../../../types/budget-hash';
import { MAX_DECIMAL_CHARS, readDecimal } from '../../../types/wire-number';
import { budgetFixture } from '../../support/budget-fixture';

const sampleBudget: BudgetRecord = budgetFixture();

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

describe('readBudgetHash and the HMGET reader agree with the BudgetHash schema', () => {
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
});
