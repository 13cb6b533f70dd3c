import { expect } from 'chai';
import { PortfolioStateTracker } from '../../../lib/worker/sources/portfolio-state-source';

const NOW_SEC = 1_800_000_000;
const at = (sec: number) => sec * 1000;
const state = (timestampSec: number, equity = '100000') => ({ equity_usd: equity, drawdown: '0.01', timestamp: String(timestampSec) });

describe('PortfolioStateTracker', () => {
  const tracker = () => new PortfolioStateTracker({ staleSec: 30, maxLkgAgeSec: 900 });

  it('uses a state younger than STALE_SEC as fresh', () => {
    const result = tracker().evaluate(state(NOW_SEC - 30), at(NOW_SEC));
    expect(result.source).to.equal('fresh');
    expect(result.state?.equity_usd).to.equal(100000);
    expect(result.ageSec).to.equal(30);
  });

  it('reports none for a stale state when nothing was fresh before', () => {
    const result = tracker().evaluate(state(NOW_SEC - 31), at(NOW_SEC));
    expect(result).to.deep.include({ source: 'none' });
    expect(result.problem).to.match(/^stale: 31 s old/);
  });

  it('lets the last-known-good state stand in while it is at most MAX_LKG_AGE_SEC old', () => {
    const t = tracker();
    t.evaluate(state(NOW_SEC, '90000'), at(NOW_SEC));
    const result = t.evaluate({}, at(NOW_SEC + 900));
    expect(result).to.deep.include({ source: 'lkg', problem: 'missing', ageSec: 900 });
    expect(result.state?.equity_usd).to.equal(90000);
  });

  it('drops the last-known-good state once it is older than MAX_LKG_AGE_SEC', () => {
    const t = tracker();
    t.evaluate(state(NOW_SEC), at(NOW_SEC));
    expect(t.evaluate(state(NOW_SEC), at(NOW_SEC + 901)).source).to.equal('none');
  });

  it('never stands in when MAX_LKG_AGE_SEC is 0', () => {
    const t = new PortfolioStateTracker({ staleSec: 30, maxLkgAgeSec: 0 });
    t.evaluate(state(NOW_SEC), at(NOW_SEC));
    expect(t.evaluate({}, at(NOW_SEC + 1)).source).to.equal('none');
  });

  it('rejects an invalid state and names the bad field', () => {
    const result = tracker().evaluate({ equity_usd: 'NaN', timestamp: String(NOW_SEC) }, at(NOW_SEC));
    expect(result.source).to.equal('none');
    expect(result.problem).to.contain('equity_usd');
  });

  it('rejects a timestamp further in the future than STALE_SEC (milliseconds written as seconds)', () => {
    const result = tracker().evaluate(state(NOW_SEC * 1000), at(NOW_SEC));
    expect(result.source).to.equal('none');
    expect(result.problem).to.contain('in the future');
  });

  it('treats a read error like a missing state', () => {
    const result = tracker().evaluate(new Error('WRONGTYPE'), at(NOW_SEC));
    expect(result).to.deep.include({ source: 'none', problem: 'unreadable: WRONGTYPE' });
  });
});
