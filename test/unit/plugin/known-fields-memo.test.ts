import { expect } from 'chai';
import { joinedCopy, KnownFieldsMemo } from '../../../plugin/known-fields-memo';

describe('KnownFieldsMemo', () => {
  it('joins a copy with NUL bytes, a missing value as an empty one', () => {
    expect(joinedCopy(['ETHUSDT', null, '0.5'])).to.equal('ETHUSDT\u0000\u00000.5');
  });

  it('gives no copy to compare when a value is empty or holds a NUL byte: the script is asked for every value', () => {
    expect(joinedCopy(['ETHUSDT', ''])).to.equal(undefined);
    expect(joinedCopy(['ETHUSDT', 'a\u0000b'])).to.equal(undefined);
  });

  it('keeps the last values of each symbol', () => {
    const memo = new KnownFieldsMemo();
    memo.remember('ETHUSDT', ['1']);
    const kept = memo.remember('ETHUSDT', ['2']);
    expect(memo.get('ETHUSDT')).to.equal(kept);
    expect(kept).to.deep.equal({ values: ['2'], joined: '2' });
    expect(memo.get('BTCUSDT')).to.equal(undefined);
  });

  it('holds at most its capacity of symbols, forgetting the one changed longest ago', () => {
    const memo = new KnownFieldsMemo(3);
    for (const symbol of ['A', 'B', 'C']) memo.remember(symbol, [symbol]);
    memo.remember('A', ['A2']);
    memo.remember('D', ['D']);
    expect(memo.size).to.equal(3);
    expect(['A', 'B', 'C', 'D'].map((s) => memo.get(s)?.values[0])).to.deep.equal(['A2', undefined, 'C', 'D']);
  });
});
