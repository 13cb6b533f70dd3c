import { expect } from 'chai';
import fc from 'fast-check';
import { numericString, parseDecimal, readDecimal } from '../../../types/wire-number';

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

describe('readDecimal agrees with parseDecimal', () => {

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
});
