import { expect } from 'chai';
import { KeyNameError, RedisKeys } from '../../../lib/redis/keys';

describe('RedisKeys', () => {
  const keys = new RedisKeys();

  it('builds the contract key names under the default prefix quantum', () => {
    expect(keys.portfolioState).to.equal('quantum:state:portfolio');
    expect(keys.positionSnapshot('BTCUSDT')).to.equal('quantum:position:snapshot:BTCUSDT');
    expect(keys.positionSnapshotPattern).to.equal('quantum:position:snapshot:*');
    expect(keys.clusterStress('default')).to.equal('quantum:cluster:stress:default');
    expect(keys.marketState('ETHUSDT')).to.equal('quantum:state:market:ETHUSDT');
    expect(keys.budget('BTCUSDT')).to.equal('quantum:portfolio:budget:BTCUSDT');
    expect(keys.violationStream).to.equal('quantum:stream:budget.violation');
    expect(keys.marketStatePattern).to.equal('quantum:state:market:*');
    expect(keys.workerHeartbeat).to.equal('quantum:p28:worker:heartbeat');
  });

  it('reads the symbol back from a market state key and ignores anything else', () => {
    expect(keys.symbolOfMarketState('quantum:state:market:SOLUSDT')).to.equal('SOLUSDT');
    expect(keys.symbolOfMarketState('quantum:state:market:sol')).to.equal(undefined);
    expect(keys.symbolOfMarketState('quantum:position:snapshot:SOLUSDT')).to.equal(undefined);
  });

  it('finds every budget hash with one SCAN pattern and reads the symbol back from a key', () => {
    expect(keys.budgetPattern).to.equal('quantum:portfolio:budget:*');
    expect(keys.symbolOfBudget(keys.budget('ETHUSDT'))).to.equal('ETHUSDT');
    expect(keys.symbolOfBudget('quantum:portfolio:budget:eth*')).to.equal(undefined);
    expect(keys.symbolOfBudget('quantum:state:market:ETHUSDT')).to.equal(undefined);
  });

  it('uses a configured prefix for every key', () => {
    const staging = new RedisKeys('staging');
    expect(staging.budget('BTCUSDT')).to.equal('staging:portfolio:budget:BTCUSDT');
    expect(staging.portfolioState).to.equal('staging:state:portfolio');
    for (const key of [staging.violationStream, staging.modeOverride, staging.modeAuditStream, staging.workerLease]) {
      expect(key.startsWith('staging:')).to.equal(true);
    }
  });

  for (const bad of ['btcusdt', 'BTC*', 'BTC:USDT', 'BTC USDT', '', 'A'.repeat(33), 'BTC\nUSDT']) {
    it(`refuses the symbol ${JSON.stringify(bad)}`, () => {
      expect(() => keys.budget(bad)).to.throw(KeyNameError);
      expect(() => keys.positionSnapshot(bad)).to.throw(KeyNameError);
      expect(() => keys.marketState(bad)).to.throw(KeyNameError);
    });
  }

  it('refuses a cluster id or a prefix that would break the key space', () => {
    expect(() => keys.clusterStress('a:b')).to.throw(KeyNameError);
    expect(() => keys.clusterStress('*')).to.throw(KeyNameError);
    expect(() => new RedisKeys('quantum:x')).to.throw(KeyNameError);
  });

  it('reads the symbol back from a snapshot key and ignores anything else', () => {
    expect(keys.symbolOfPositionSnapshot('quantum:position:snapshot:BTCUSDT')).to.equal('BTCUSDT');
    expect(keys.symbolOfPositionSnapshot('quantum:position:snapshot:btc')).to.equal(undefined);
    expect(keys.symbolOfPositionSnapshot('other:position:snapshot:BTCUSDT')).to.equal(undefined);
  });
});
