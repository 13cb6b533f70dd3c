import { expect } from 'chai';
import { ClusterStressHash, MarketStateHash, PortfolioStateHash, PositionSnapshotHash, volRegimeOf } from '../../../types/inputs';
import { formatIssues } from '../../../types/wire-number';

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
