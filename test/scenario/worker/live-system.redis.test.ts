import { expect } from 'chai';
import sinon from 'sinon';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import type { RedisClient } from '../../../lib/redis/client';
import { decideFromBudgetFields } from '../../../plugin/decide';
import { BudgetGate } from '../../../plugin/budget-gate';
import { connectedClient, useRedisServer } from '../../support/redis';
import { metricValue, workerConfig } from '../../support/seed';
import { DEFAULT_POLICY } from '../../support/gate-fixtures';
import { captureLogs } from '../../support/log-capture';
import { pyFloat, writeLiveBook, writeMarketStateAsPublisher, writePortfolioAsPublisher, writePositionAsBrain } from '../../support/live-system';

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);
const NOW_SEC = Math.floor(NOW / 1000);
const BUDGET = (symbol: string) => `quantum:portfolio:budget:${symbol}`;
const fixedHeat = (value: number): HeatReader => ({ read: async () => ({ value, source: 'live', ageSec: 0 }) });
/** A 1-minute sigma in the NORMAL band (0.000645 to 0.00258): 0.33, as the guide's Test 1 has it. */
const NORMAL_SIGMA = 0.0012;

describe('the live system as its services write it today', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  let workerClient: RedisClient;
  let clock: sinon.SinonFakeTimers;

  before(async () => {
    client = await connectedClient(redis.server);
    workerClient = await connectedClient(redis.server);
  });
  after(() => {
    client.disconnect();
    workerClient.disconnect();
  });
  beforeEach(async () => {
    await client.flushall();
    clock = sinon.useFakeTimers({ now: NOW, toFake: ['Date'] });
  });
  afterEach(() => clock.restore());

  const makeWorker = (env: Record<string, string> = {}) =>
    new BudgetWorker({ config: workerConfig(redis.server, { P28_MODE: 'enforce', ...env }), redis: workerClient, heatSource: fixedHeat(0.65) });

  const plan = (symbol: string, over: Record<string, unknown> = {}) => ({ planId: `p-${symbol}`, symbol, action: 'OPEN', side: 'BUY' as const, ...over });
  const decide = async (symbol: string, over: Record<string, unknown> = {}) => decideFromBudgetFields(plan(symbol, over) as never, await client.hgetall(BUDGET(symbol)), NOW, DEFAULT_POLICY);

  it('writes the guide Test 1 budget from the live keys: 1348 USD, stress 0.326, position 0.5 at mark 100000, status ok', async () => {
    await writeLiveBook(client, {
      nowSec: NOW_SEC,
      positions: { BTCUSDT: { amt: 0.5, entryPrice: 99000, markPrice: 100000 }, ETHUSDT: { amt: 0, entryPrice: 0, markPrice: 0 } },
      sigmas: { BTCUSDT: NORMAL_SIGMA, ETHUSDT: NORMAL_SIGMA },
    });
    const report = await makeWorker().runOnce();
    expect(report.result).to.equal('ok');
    expect(await client.hgetall(BUDGET('BTCUSDT'))).to.deep.include({
      budget_usd: '1348',
      stress_factor: '0.326',
      vol_regime: '0.33',
      position_amt: '0.5',
      position_price: '100000',
      position_notional_usd: '50000',
      over_budget_usd: '48652',
      position_status: 'ok',
      mode: 'enforce',
    });
    expect(await client.hgetall(BUDGET('ETHUSDT'))).to.deep.include({ position_amt: '0', position_notional_usd: '0', position_status: 'ok', budget_usd: '1348' });
    expect(report.staleInputs).to.deep.equal({});
  });

  it('publishes the violation of the over-budget position, and blocks an ADD on it while allowing an ADD that fits on a flat symbol', async () => {
    await writeLiveBook(client, {
      nowSec: NOW_SEC,
      positions: { BTCUSDT: { amt: 0.5, entryPrice: 99000, markPrice: 100000 }, ETHUSDT: { amt: 0, entryPrice: 0, markPrice: 0 } },
      sigmas: { BTCUSDT: NORMAL_SIGMA, ETHUSDT: NORMAL_SIGMA },
    });
    await makeWorker().runOnce();
    const [entry] = await client.xrange('quantum:stream:budget.violation', '-', '+');
    const fields = entry![1];
    expect(fields.slice(0, 12)).to.deep.equal(['event_type', 'budget.violation', 'symbol', 'BTCUSDT', 'position_notional', '50000', 'budget_usd', '1348', 'over_budget', '48652', 'mode', 'enforce']);

    expect(await decide('BTCUSDT', { qty: 0.001 })).to.include({ allow: false, reason: 'p28_budget_violation' });
    expect(await decide('ETHUSDT', { notionalUsd: 1000 })).to.include({ allow: true, reason: 'within_budget' });
    expect(await decide('ETHUSDT', { notionalUsd: 2000 })).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget' });
  });

  it('takes a position older than POSITION_STALE_SEC for unknown, never flat: status stale, counted, and an ADD judged by its own notional', async () => {
    await writeLiveBook(client, {
      nowSec: NOW_SEC,
      positions: { SOLUSDT: { amt: 100, entryPrice: 150, markPrice: 150, tsEpoch: NOW_SEC - 120 } },
      sigmas: { SOLUSDT: NORMAL_SIGMA },
    });
    const worker = makeWorker();
    const report = await worker.runOnce();
    expect(report.result).to.equal('ok');
    expect(await client.hgetall(BUDGET('SOLUSDT'))).to.deep.include({ position_status: 'stale', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0' });
    expect(report.staleInputs.position).to.equal(1);
    expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'position' })).to.equal(1);
    expect(worker.healthFacts.positions).to.deep.equal({ stale: 1, unknown: 0, invalid: 0 });
    expect(await decide('SOLUSDT', { notionalUsd: 1000 })).to.include({ allow: true, reason: 'within_budget', detail: 'position_unknown' });
    expect(await decide('SOLUSDT', { notionalUsd: 1500 })).to.include({ allow: false, detail: 'projected_over_budget,position_unknown' });
    // A SELL on the stale long is not taken for a reduction: the position may not be there any more.
    expect(await decide('SOLUSDT', { side: 'SELL', notionalUsd: 1500 })).to.include({ allow: false });
  });

  it('makes flat-looking positions unknown when the positions feed stops while the portfolio state still counts positions', async () => {
    // The publisher counted two positions (60000 USD); only one key is left, and a tracked symbol reads as flat.
    await writePositionAsBrain(client, 'BTCUSDT', { amt: 0.5, entryPrice: 100000, markPrice: 100000, tsEpoch: NOW_SEC });
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 2, positionsNotionalUsd: 60000 });
    await writeMarketStateAsPublisher(client, 'ETHUSDT', { sigma: NORMAL_SIGMA, tsTimestamp: NOW_SEC });
    const worker = makeWorker();
    const report = await worker.runOnce();
    expect(report.result).to.equal('ok');
    expect(await client.hgetall(BUDGET('ETHUSDT'))).to.deep.include({ position_status: 'unknown', position_amt: '0' });
    // The position it does see stays known.
    expect(await client.hgetall(BUDGET('BTCUSDT'))).to.deep.include({ position_status: 'ok', position_notional_usd: '50000' });
    expect(report.positions).to.deep.equal({ stale: 0, unknown: 1, invalid: 0, feedProblem: 'the portfolio state counts 2 positions, the position keys show 1' });
    expect(await decide('ETHUSDT', { notionalUsd: 500 })).to.include({ allow: true, detail: 'position_unknown' });
  });

  it('logs unknown positions once per change, naming the symbols and why, not on every cycle', async () => {
    await writeLiveBook(client, {
      nowSec: NOW_SEC,
      positions: { SOLUSDT: { amt: 100, entryPrice: 150, markPrice: 150, tsEpoch: NOW_SEC - 120 } },
      sigmas: { SOLUSDT: NORMAL_SIGMA },
    });
    const { logger, lines } = captureLogs();
    const worker = new BudgetWorker({ config: workerConfig(redis.server, { P28_MODE: 'enforce' }), redis: workerClient, heatSource: fixedHeat(0.65), logger });
    for (let i = 0; i < 3; i++) await worker.runOnce();
    const unknown = lines.filter((l) => /positions unknown/.test(l.msg));
    expect(unknown).to.have.length(1);
    expect(unknown[0]).to.deep.include({ stale: 1, symbols: ['SOLUSDT'] });
    expect(String((unknown[0]!.details as string[])[0])).to.match(/^SOLUSDT: canonical position 120 s old, limit POSITION_STALE_SEC=60/);
    // The feed recovers: one line says so.
    await writePositionAsBrain(client, 'SOLUSDT', { amt: 100, entryPrice: 150, markPrice: 150, tsEpoch: NOW_SEC });
    await worker.runOnce();
    expect(lines.filter((l) => l.msg === 'every position known again')).to.have.length(1);
  });

  it('names a lower-case input key in one log line, however many cycles read it', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 1, positionsNotionalUsd: 3000 });
    await writePositionAsBrain(client, 'ethusdt', { amt: 1.5, entryPrice: 2000, markPrice: 2000, tsEpoch: NOW_SEC });
    const { logger, lines } = captureLogs();
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: workerClient, heatSource: fixedHeat(0.65), logger });
    for (let i = 0; i < 3; i++) await worker.runOnce();
    const named = lines.filter((l) => /another case/.test(l.msg));
    expect(named).to.have.length(1);
    expect(named[0]!.keys).to.deep.equal(['quantum:state:positions:ethusdt']);
  });

  it('makes flat-looking positions unknown when the keys show clearly less notional than the portfolio state counts', async () => {
    await writePositionAsBrain(client, 'BTCUSDT', { amt: 0.5, entryPrice: 100000, markPrice: 100000, tsEpoch: NOW_SEC });
    await writePositionAsBrain(client, 'ETHUSDT', { amt: 0, entryPrice: 0, markPrice: 0, tsEpoch: NOW_SEC });
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 2, positionsNotionalUsd: 90000 });
    const report = await makeWorker().runOnce();
    expect(await client.hgetall(BUDGET('ETHUSDT'))).to.deep.include({ position_status: 'unknown' });
    expect(report.positions?.feedProblem).to.equal('the portfolio state counts 90000 USD of positions, the position keys show 50000 USD');
  });

  it('finds the feed complete when counts agree and the notional moved within the tolerance', async () => {
    await writePositionAsBrain(client, 'BTCUSDT', { amt: 0.5, entryPrice: 100000, markPrice: 100000, tsEpoch: NOW_SEC });
    await writePositionAsBrain(client, 'ETHUSDT', { amt: 0, entryPrice: 0, markPrice: 0, tsEpoch: NOW_SEC });
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 2, positionsNotionalUsd: 51000 });
    const report = await makeWorker().runOnce();
    expect(await client.hgetall(BUDGET('ETHUSDT'))).to.deep.include({ position_status: 'ok' });
    expect(report.positions).to.deep.equal({ stale: 0, unknown: 0, invalid: 0 });
  });

  it('counts the fresher of two families when both hold a position for a symbol', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 2, positionsNotionalUsd: 0 });
    // Canonical 30 s old, legacy 5 s old: the legacy one is fresher.
    await writePositionAsBrain(client, 'BTCUSDT', { amt: 0.5, entryPrice: 100000, markPrice: 100000, tsEpoch: NOW_SEC - 30 });
    await client.hset('quantum:position:snapshot:BTCUSDT', { position_amt: '0.2', entry_price: '100000', side: 'LONG', timestamp: String(NOW_SEC - 5) });
    // Canonical fresher than legacy.
    await writePositionAsBrain(client, 'ETHUSDT', { amt: -3, entryPrice: 2000, markPrice: 2000, tsEpoch: NOW_SEC - 2 });
    await client.hset('quantum:position:snapshot:ETHUSDT', { position_amt: '-1', entry_price: '2000', side: 'SHORT', timestamp: String(NOW_SEC - 40) });
    await makeWorker().runOnce();
    expect(await client.hgetall(BUDGET('BTCUSDT'))).to.deep.include({ position_amt: '0.2', position_notional_usd: '20000' });
    expect(await client.hgetall(BUDGET('ETHUSDT'))).to.deep.include({ position_amt: '-3', position_notional_usd: '6000' });
  });

  it('counts the canonical position when the legacy one has no timestamp to compare', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 1, positionsNotionalUsd: 50000 });
    await writePositionAsBrain(client, 'BTCUSDT', { amt: 0.5, entryPrice: 100000, markPrice: 100000, tsEpoch: NOW_SEC - 30 });
    await client.hset('quantum:position:snapshot:BTCUSDT', { position_amt: '0.2', entry_price: '100000', side: 'LONG' });
    await makeWorker().runOnce();
    expect(await client.hgetall(BUDGET('BTCUSDT'))).to.deep.include({ position_amt: '0.5' });
  });

  it('reads a lower-case key written by another service as its upper-case symbol', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 1, positionsNotionalUsd: 3000 });
    await writePositionAsBrain(client, 'ethusdt', { amt: 1.5, entryPrice: 2000, markPrice: 2000, tsEpoch: NOW_SEC });
    const report = await makeWorker().runOnce();
    expect(report.result).to.equal('ok');
    expect(await client.hgetall(BUDGET('ETHUSDT'))).to.deep.include({ symbol: 'ETHUSDT', position_amt: '1.5', position_notional_usd: '3000', position_status: 'ok' });
  });

  it('maps the publisher\'s 1-minute sigma to the regime: quiet LOW, violent EXTREME', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 0, positionsNotionalUsd: 0 });
    await writeMarketStateAsPublisher(client, 'AUSDT', { sigma: 0.0003, tsTimestamp: NOW_SEC });
    await writeMarketStateAsPublisher(client, 'BUSDT', { sigma: 0.005, tsTimestamp: NOW_SEC });
    await writeMarketStateAsPublisher(client, 'CUSDT', { sigma: 0.003, tsTimestamp: NOW_SEC });
    // A live sigma older than MARKET_STATE_STALE_SEC is not used: NORMAL, counted.
    await writeMarketStateAsPublisher(client, 'DUSDT', { sigma: 0.005, tsTimestamp: NOW_SEC - 700 });
    const report = await makeWorker().runOnce();
    expect((await client.hgetall(BUDGET('AUSDT'))).vol_regime).to.equal('0');
    expect((await client.hgetall(BUDGET('BUSDT'))).vol_regime).to.equal('1');
    expect((await client.hgetall(BUDGET('CUSDT'))).vol_regime).to.equal('0.67');
    expect((await client.hgetall(BUDGET('DUSDT'))).vol_regime).to.equal('0.33');
    expect(report.staleInputs.vol_regime).to.equal(1);
  });

  it('lets a legacy vol_regime win over the live sigma, and reads the cluster from the legacy hash', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 0, positionsNotionalUsd: 0 });
    await writeMarketStateAsPublisher(client, 'BTCUSDT', { sigma: 0.005, tsTimestamp: NOW_SEC });
    await client.hset('quantum:state:market:BTCUSDT', { vol_regime: 'LOW', cluster_id: 'majors' });
    await client.hset('quantum:cluster:stress:majors', { stress: '0.5' });
    await makeWorker().runOnce();
    expect(await client.hgetall(BUDGET('BTCUSDT'))).to.deep.include({ vol_regime: '0', cluster_stress: '0.5' });
  });

  it('reads the key families from configuration: a moved positions family is read, a switched-off legacy one is not', async () => {
    await writePortfolioAsPublisher(client, { equityUsd: 100000, nowSec: NOW_SEC, positionsCount: 1, positionsNotionalUsd: 0 });
    await client.hset('quantum:positions:v3:BTCUSDT', { position_amt: pyFloat(0.5), side: 'LONG', entry_price: pyFloat(100000), mark_price: pyFloat(100000), ts_epoch: String(NOW_SEC) });
    await client.hset('quantum:position:snapshot:XRPUSDT', { position_amt: '100', entry_price: '1' });
    await makeWorker({ P28_POSITIONS_FAMILY: 'positions:v3', P28_LEGACY_POSITIONS_FAMILY: 'none' }).runOnce();
    expect(await client.hgetall(BUDGET('BTCUSDT'))).to.deep.include({ position_amt: '0.5' });
    expect(await client.exists(BUDGET('XRPUSDT'))).to.equal(0);
  });

  it('lets the plugin gate judge a budget written from the live keys, with a lower-case symbol', async () => {
    await writeLiveBook(client, { nowSec: NOW_SEC, positions: { BTCUSDT: { amt: 0.5, entryPrice: 100000, markPrice: 100000 } }, sigmas: { BTCUSDT: NORMAL_SIGMA } });
    await makeWorker().runOnce();
    clock.restore();
    const gate = new BudgetGate({ redisUrl: redis.server.url, now: () => NOW });
    try {
      await gate.ready();
      expect(await gate.evaluate({ planId: 'p1', symbol: 'btcusdt', action: 'OPEN', side: 'BUY', qty: 0.01 })).to.include({ allow: false, reason: 'p28_budget_violation' });
      expect(await gate.evaluate({ planId: 'p2', symbol: 'btcusdt', action: 'CLOSE', side: 'SELL', qty: 0.5 })).to.include({ allow: true, reason: 'reduce_only' });
    } finally {
      await gate.close();
      clock = sinon.useFakeTimers({ now: NOW, toFake: ['Date'] });
    }
  });
});
