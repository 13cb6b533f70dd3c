import { expect } from 'chai';
import { PortfolioReader } from '../../../lib/worker/input-reader';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { command } from '../../../lib/redis/command-batch';
import { INPUT_SOURCES, type InputSource } from '../../../lib/worker/sources/index';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { connectedClient, useRedisServer } from '../../support/redis';

describe('PortfolioReader', () => {
  const redis = useRedisServer();
  const keys = new RedisKeys();
  let client: RedisClient;
  let reader: PortfolioReader;
  const heat: HeatReader = { read: () => Promise.resolve({ value: 0.2, source: 'live', ageSec: 0 }) };

  before(async () => {
    client = await connectedClient(redis.server);
    reader = new PortfolioReader({ client, keys, heat });
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());

  /** A cycle's reads: the head (which finds the keys), then the symbols. */
  const readSymbols = async (symbols: string[]) => {
    await reader.readHead();
    return reader.readSymbols(symbols, Date.now());
  };

  describe('readHead', () => {
    it('lists the symbols of position snapshots and of market hashes, each once and sorted, and sets aside keys naming no valid symbol', async () => {
      await client.hset(keys.positionSnapshot('ETHUSDT'), { position_amt: '1', entry_price: '1000' });
      await client.hset(keys.positionSnapshot('BTCUSDT'), { position_amt: '0', entry_price: '100000' });
      await client.hset('quantum:position:snapshot:btc*usdt', { position_amt: '1', entry_price: '1' });
      await client.hset(keys.marketState('SOLUSDT'), { vol_regime: 'HIGH_VOL' });
      await client.hset(keys.marketState('ETHUSDT'), { vol_regime: 'LOW' });
      const head = await reader.readHead();
      expect(head.symbols).to.deep.equal(['BTCUSDT', 'ETHUSDT']);
      expect(head.trackedSymbols).to.deep.equal(['ETHUSDT', 'SOLUSDT']);
      expect(head.invalidKeys).to.deep.equal(['quantum:position:snapshot:btc*usdt']);
    });

    it('returns the portfolio state, heat, the override and no heartbeat from an otherwise empty Redis', async () => {
      await client.hset(keys.portfolioState, { equity_usd: '100000', drawdown: '0', timestamp: '1769553243' });
      await client.set(keys.modeOverride, 'enforce');
      const head = await reader.readHead(1769553248 * 1000);
      expect(head.inputs.portfolio_state).to.deep.include({ source: 'fresh', ageSec: 5 });
      expect(head.inputs.portfolio_state.state).to.deep.include({ equity_usd: 100000, drawdown: 0, timestamp: 1769553243 });
      expect(head.inputs.heat).to.deep.equal({ value: 0.2, source: 'live', ageSec: 0 });
      expect(head.problems).to.deep.equal([]);
      expect(head.override).to.equal('enforce');
      expect(head.auditTail).to.equal(null);
      expect(head.heartbeat).to.equal(undefined);
    });

    it('reports a portfolio state of the wrong type as the error of reading it, not as a state', async () => {
      await client.set(keys.portfolioState, 'not a hash');
      const head = await reader.readHead();
      expect(head.inputs.portfolio_state.source).to.equal('none');
      expect(head.inputs.portfolio_state.problem).to.match(/^unreadable: WRONGTYPE/);
      expect(head.problems.map((p) => p.inputType)).to.deep.equal(['portfolio_state']);
    });
  });

  describe('the list of sources', () => {
    /** A portfolio-wide input of one GET, and a per-symbol one that records what it judged. */
    const judged: string[] = [];
    const extraPortfolio: InputSource = {
      name: 'extra_portfolio',
      scope: 'portfolio',
      staleLabels: ['heat'],
      create: () => ({
        commands: () => [command('get', 'extra:portfolio')],
        read: async (outcomes) => (await outcomes)[0]!.value,
      }),
    };
    const extraSymbol: InputSource = {
      name: 'extra_symbol',
      scope: 'symbol',
      staleLabels: [],
      create: ({ keys: k }) => {
        const positions = INPUT_SOURCES[2].create({ keys: k, positionStaleSec: 60, positionsFeedTolerancePct: 5 });
        return {
          families: positions.families,
          universe: 'none',
          invalidKeyLabel: undefined,
          discover: (keysByFamily) => positions.discover(keysByFamily),
          commands: (symbol) => positions.commands(symbol),
          judge: (symbol, outcomes) => {
            judged.push(`${symbol}:${outcomes.length}`);
            return {};
          },
        };
      },
    };

    it('reads every source of the list, by scope, an added one included', async () => {
      const extended = new PortfolioReader({ client, keys, heat, sources: [...INPUT_SOURCES, extraPortfolio, extraSymbol] });
      await client.set('extra:portfolio', 'seen');
      await client.hset(keys.positionSnapshot('BTCUSDT'), { position_amt: '0', entry_price: '100000' });
      const head = await extended.readHead();
      expect((head.inputs as unknown as Record<string, unknown>).extra_portfolio).to.equal('seen');
      const read = await extended.readSymbols(['BTCUSDT', 'ETHUSDT'], Date.now());
      expect(judged).to.deep.equal(['BTCUSDT:1', 'ETHUSDT:0']);
      expect(read.inputs.map((i) => [i.symbol, i.positionStatus, i.clusterStress])).to.deep.equal([
        ['BTCUSDT', 'ok', 0],
        ['ETHUSDT', 'ok', 0],
      ]);
    });

    it('reads only the sources of its list', async () => {
      const positionsOnly = new PortfolioReader({ client, keys, heat, sources: [INPUT_SOURCES[2]] });
      await client.hset(keys.positionSnapshot('BTCUSDT'), { position_amt: '1', entry_price: '100000' });
      await client.hset(keys.marketState('SOLUSDT'), { vol_regime: 'HIGH_VOL' });
      const head = await positionsOnly.readHead();
      expect(head.inputs).to.deep.equal({});
      expect(head.symbols).to.deep.equal(['BTCUSDT']);
      expect(head.trackedSymbols).to.deep.equal([]);
      const [input] = (await positionsOnly.readSymbols(['BTCUSDT'], Date.now())).inputs;
      expect(input).to.deep.equal({ symbol: 'BTCUSDT', positionAmt: 1, positionPrice: 100000, notionalUsd: 100000, positionStatus: 'ok' });
    });
  });

  describe('readSymbols', () => {
    it('gives the guide Test 1 inputs: notional 50000 at mark-less entry price, NORMAL vol 0.33, cluster stress of the named cluster', async () => {
      await client.hset(keys.positionSnapshot('BTCUSDT'), { position_amt: '0.5', entry_price: '100000', side: 'LONG' });
      await client.hset(keys.marketState('BTCUSDT'), { vol_regime: 'NORMAL', cluster_id: 'majors' });
      await client.hset(keys.clusterStress('majors'), { stress: '0.25' });
      const read = await readSymbols(['BTCUSDT']);
      expect(read.inputs).to.deep.equal([
        { symbol: 'BTCUSDT', positionAmt: 0.5, positionPrice: 100000, notionalUsd: 50000, positionStatus: 'ok', clusterId: 'majors', clusterStress: 0.25, volRegime: 0.33 },
      ]);
      expect(read.problems).to.deep.equal([]);
    });

    it('prices a position at its mark price when it has one, and reads the live regime names', async () => {
      await client.hset(keys.positionSnapshot('ETHUSDT'), { position_amt: '-2', entry_price: '1000', mark_price: '1100' });
      await client.hset(keys.marketState('ETHUSDT'), { vol_regime: 'extreme_vol' });
      const [input] = (await readSymbols(['ETHUSDT'])).inputs;
      expect(input).to.include({ positionAmt: -2, positionPrice: 1100, notionalUsd: 2200, volRegime: 1, clusterId: 'default', clusterStress: 0 });
    });

    it('treats a symbol without a snapshot as flat, and a missing market hash as NORMAL, counted', async () => {
      const read = await readSymbols(['SOLUSDT']);
      expect(read.inputs[0]).to.include({ positionAmt: 0, notionalUsd: 0, positionStatus: 'ok', volRegime: 0.33 });
      expect(read.problems.map((p) => p.inputType)).to.deep.equal(['vol_regime']);
    });

    it('keeps a symbol whose snapshot is absurd, with its position unknown and counted, and falls back field by field', async () => {
      await client.hset(keys.positionSnapshot('BTCUSDT'), { position_amt: '1e308', entry_price: '1e308', mark_price: '1e308' });
      await client.hset(keys.marketState('BTCUSDT'), { vol_regime: 'SIDEWAYS', sigma: '0.025', cluster_id: 'bad cluster' });
      await client.hset(keys.clusterStress('default'), { stress: '2' });
      const read = await readSymbols(['BTCUSDT']);
      expect(read.inputs[0]).to.include({ positionStatus: 'invalid', positionAmt: 0, notionalUsd: 0, volRegime: 0.67, clusterId: 'default', clusterStress: 0 });
      expect(read.problems.map((p) => p.inputType).sort()).to.deep.equal(['cluster_stress', 'cluster_stress', 'position', 'vol_regime']);
    });

    it('reads each distinct cluster once, whatever the number of symbols in it', async () => {
      const symbols = ['AUSDT', 'BUSDT', 'CUSDT'];
      for (const s of symbols) await client.hset(keys.marketState(s), { vol_regime: 'LOW', cluster_id: 'alts' });
      await client.hset(keys.clusterStress('alts'), { stress: '0.5' });
      await reader.readHead();
      await client.config('RESETSTAT');
      const read = await reader.readSymbols(symbols, Date.now());
      expect(read.inputs.map((i) => i.clusterStress)).to.deep.equal([0.5, 0.5, 0.5]);
      const stats = (await client.info('commandstats')) as string;
      // One read per key that exists (three market hashes, no position keys), and one per cluster.
      expect(/cmdstat_hgetall:calls=(\d+)/.exec(stats)?.[1]).to.equal(String(symbols.length + 1));
    });
  });
});
