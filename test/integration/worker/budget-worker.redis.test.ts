import { socketWrites } from '../../support/socket-writes';
import { expect } from 'chai';
import fc from 'fast-check';
import sinon from 'sinon';
import { BudgetHash } from '../../../types/budget-hash';
import { ViolationStreamEntry } from '../../../types/violation-event';
import { BudgetWorker, type BudgetWorkerOptions } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { freePort } from '../../support/local-redis-server';
import type { RedisClient } from '../../../lib/redis/client';
import { HeatGateStub } from '../../support/heat-gate-stub';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { useRedisCluster } from '../../support/redis-cluster';
import { seedGuideScenario, seedSymbols, workerConfig } from '../../support/seed';
import { metricValue } from '../../support/metric-values';
import { decideFromBudgetFields } from '../../../plugin/decide';
import { DEFAULT_POLICY } from '../../support/gate-fixtures';

const NOW = Date.UTC(2026, 0, 27, 22, 34, 3);
const NOW_SEC = Math.floor(NOW / 1000);
const BUDGET = (symbol: string) => `quantum:portfolio:budget:${symbol}`;
const VIOLATIONS = 'quantum:stream:budget.violation';

/** Field/value pairs of a stream entry as an object. */
const entryFields = (fields: string[]) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]!]] : [])));

const fixedHeat = (value: number): HeatReader => ({ read: async () => ({ value, source: 'live', ageSec: 0 }) });

describe('BudgetWorker', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  let workerClient: RedisClient;
  let stub: HeatGateStub;
  let clock: sinon.SinonFakeTimers;

  before(async () => {
    client = await connectedClient(redis.server);
    workerClient = await connectedClient(redis.server);
    stub = await HeatGateStub.start();
  });
  after(async () => {
    client.disconnect();
    workerClient.disconnect();
    await stub.close();
  });
  beforeEach(async () => {
    await client.flushall();
    stub.serveHeat(0.65);
    // Only Date is faked: Redis, HTTP and their timeouts run on real timers.
    clock = sinon.useFakeTimers({ now: NOW, toFake: ['Date'] });
  });
  afterEach(() => clock.restore());

  const makeWorker = (env: Record<string, string> = {}, options: Partial<BudgetWorkerOptions> = {}) =>
    new BudgetWorker({
      config: workerConfig(redis.server, { HEAT_GATE_METRICS_URL: stub.url, HEAT_FETCH_TIMEOUT_MS: '200', ...env }),
      redis: workerClient,
      ...options,
    });

  describe('the deployment guide scenarios', () => {
    it('Test 1: heat 0.65 from P2.6 gives budget 1348, stress 0.326, a TTL and a violation of 48652', async () => {
      stub.serveHeat(0.65);
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const report = await makeWorker().runOnce();

      expect(report.result).to.equal('ok');
      expect(report.heat).to.include({ value: 0.65, source: 'live' });
      const hash = await client.hgetall(BUDGET('BTCUSDT'));
      expect(hash).to.deep.include({
        symbol: 'BTCUSDT',
        budget_usd: '1348',
        stress_factor: '0.326',
        equity_usd: '100000',
        portfolio_heat: '0.65',
        cluster_stress: '0',
        vol_regime: '0.33',
        mode: 'shadow',
        timestamp: String(NOW_SEC),
        base_risk_pct: '0.02',
        position_amt: '0.5',
        position_notional_usd: '50000',
        over_budget_usd: '48652',
        last_violation_ts: String(NOW_SEC),
      });
      expect(BudgetHash.safeParse(hash).success).to.equal(true);
      const ttl = await client.ttl(BUDGET('BTCUSDT'));
      expect(ttl).to.be.greaterThan(0);
      expect(ttl).to.be.at.most(60);

      const entries = await client.xrange(VIOLATIONS, '-', '+');
      expect(entries).to.have.length(1);
      const event = entryFields(entries[0]![1]);
      expect(event).to.include({ event_type: 'budget.violation', symbol: 'BTCUSDT', over_budget: '48652', budget_usd: '1348', position_notional: '50000', mode: 'shadow' });
      expect(ViolationStreamEntry.safeParse(event).success).to.equal(true);
      expect(JSON.parse(event.json!)).to.deep.equal({
        event_type: 'budget.violation',
        symbol: 'BTCUSDT',
        position_notional: 50000,
        budget_usd: 1348,
        over_budget: 48652,
        mode: 'shadow',
        timestamp: NOW_SEC,
      });
    });

    it('Test 2: heat 0.15 gives budget 1748 and stress 0.126', async () => {
      stub.serveHeat(0.15);
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await makeWorker().runOnce();
      const hash = await client.hgetall(BUDGET('BTCUSDT'));
      expect(hash.budget_usd).to.equal('1748');
      expect(hash.stress_factor).to.equal('0.126');
      expect(hash.over_budget_usd).to.equal('48252');
    });
  });

  describe('inputs and their fallbacks', () => {
    it('writes a budget hash for a flat symbol, so that a plan opening a position from flat can be judged', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC, positionAmt: '0', entryPrice: '0' });
      const report = await makeWorker().runOnce();
      const hash = await client.hgetall(BUDGET('BTCUSDT'));
      expect(hash).to.include({ budget_usd: '1348', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0' });
      expect(hash).to.not.have.property('position_price');
      expect(hash).to.not.have.property('last_violation_ts');
      expect(report.violations).to.deep.equal([]);
      expect(await client.xlen(VIOLATIONS)).to.equal(0);
    });

    it('measures the notional at the mark price when there is one', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC, positionAmt: '-0.01' });
      await client.hset('quantum:state:positions:BTCUSDT', 'mark_price', '90000');
      await makeWorker().runOnce();
      expect(await client.hgetall(BUDGET('BTCUSDT'))).to.include({ position_amt: '-0.01', position_notional_usd: '900', position_price: '90000', over_budget_usd: '0' });
    });

    it('writes nothing and counts portfolio_state when the portfolio state is older than STALE_SEC', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC - 31 });
      await client.hset(BUDGET('ETHUSDT'), 'budget_usd', '1000');
      await client.expire(BUDGET('ETHUSDT'), 5);
      const worker = makeWorker();
      const report = await worker.runOnce();
      expect(report.result).to.equal('skipped');
      expect(report.portfolio.source).to.equal('none');
      expect(report.portfolio.problem).to.match(/^stale/);
      expect(await client.exists(BUDGET('BTCUSDT'))).to.equal(0);
      expect(await client.xlen(VIOLATIONS)).to.equal(0);
      // An old budget is left to expire: the gate then fails open.
      expect(await client.ttl(BUDGET('ETHUSDT'))).to.be.at.most(5);
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'portfolio_state' })).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_cycles_total', { result: 'skipped' })).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_portfolio_too_old_total')).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_lkg_cache_used_total')).to.equal(0);
    });

    for (const [name, state] of [
      ['missing', undefined],
      ['with a NaN equity', { equity_usd: 'NaN', timestamp: String(NOW_SEC) }],
      ['with a negative equity', { equity_usd: '-100', timestamp: String(NOW_SEC) }],
      ['without a timestamp', { equity_usd: '100000' }],
    ] as const) {
      it(`writes nothing and counts portfolio_state when the portfolio state is ${name}`, async () => {
        await seedGuideScenario(client, { timestampSec: NOW_SEC });
        await client.del('quantum:state:portfolio');
        if (state) await client.hset('quantum:state:portfolio', state);
        const worker = makeWorker();
        const report = await worker.runOnce();
        expect(report.portfolio.source).to.equal('none');
        expect(await client.exists(BUDGET('BTCUSDT'))).to.equal(0);
        expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'portfolio_state' })).to.equal(1);
      });
    }

    it('lets the last-known-good portfolio state stand in, counting each cycle, until MAX_LKG_AGE_SEC', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker();
      expect((await worker.runOnce()).portfolio.source).to.equal('fresh');

      await client.hset('quantum:state:portfolio', { equity_usd: 'garbage' });
      clock.tick(60_000);
      const lkg = await worker.runOnce();
      expect(lkg.portfolio).to.include({ source: 'lkg', equityUsd: 100000 });
      expect(lkg.result).to.equal('ok');
      expect(await client.hget(BUDGET('BTCUSDT'), 'equity_usd')).to.equal('100000');
      expect(await client.hget(BUDGET('BTCUSDT'), 'timestamp')).to.equal(String(NOW_SEC + 60));
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'portfolio_state' })).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_lkg_cache_used_total')).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_portfolio_too_old_total')).to.equal(0);

      clock.tick(841_000);
      await client.del(BUDGET('BTCUSDT'));
      const expired = await worker.runOnce();
      expect(expired.portfolio.source).to.equal('none');
      expect(await client.exists(BUDGET('BTCUSDT'))).to.equal(0);
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'portfolio_state' })).to.equal(2);
      expect(await metricValue(worker.metrics.registry, 'p28_lkg_cache_used_total')).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_portfolio_too_old_total')).to.equal(1);
    });

    describe('heat from the P2.6 Heat Gate', () => {
      const failures: [string, (s: HeatGateStub) => void, string][] = [
        ['slow (no answer within HEAT_FETCH_TIMEOUT_MS)', (s) => (s.response = { status: 200, body: '', delayMs: 3000 }), 'timeout'],
        ['answering garbage', (s) => (s.response = { status: 200, body: '<html>proxy error</html>\n', delayMs: 0 }), 'missing_metric'],
        ['without p26_heat_value', (s) => (s.response = { status: 200, body: '# TYPE p26_up gauge\np26_up 1\n', delayMs: 0 }), 'missing_metric'],
        ['out of range', (s) => s.serveHeat(1.7), 'out_of_range'],
        ['answering 500', (s) => (s.response = { status: 500, body: 'boom', delayMs: 0 }), 'http_status'],
      ];
      for (const [name, breakIt, failure] of failures) {
        it(`falls back to the last known heat and counts heat when the heat gate is ${name}`, async () => {
          await seedGuideScenario(client, { timestampSec: NOW_SEC });
          const worker = makeWorker();
          stub.serveHeat(0.15);
          await worker.runOnce();
          breakIt(stub);
          clock.tick(5000);
          const report = await worker.runOnce();
          expect(report.heat).to.include({ value: 0.15, source: 'lkg', failure });
          expect(report.result).to.equal('ok');
          expect(await client.hget(BUDGET('BTCUSDT'), 'budget_usd')).to.equal('1748');
          expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'heat' })).to.equal(1);
        });
      }

      it('uses heat 0.0 and counts heat when the heat gate is down and no value is known', async () => {
        await seedGuideScenario(client, { timestampSec: NOW_SEC });
        const worker = makeWorker({ HEAT_GATE_METRICS_URL: `http://127.0.0.1:${await freePort()}/metrics` });
        const report = await worker.runOnce();
        expect(report.heat).to.include({ value: 0, source: 'default', failure: 'unreachable' });
        // stress = 0.2 * 0.33 = 0.066, budget = 2000 * 0.934
        expect(await client.hgetall(BUDGET('BTCUSDT'))).to.include({ portfolio_heat: '0', stress_factor: '0.066', budget_usd: '1868' });
        expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'heat' })).to.equal(1);
      });

      it('drops the last known heat after MAX_LKG_AGE_SEC and uses 0.0', async () => {
        await seedGuideScenario(client, { timestampSec: NOW_SEC });
        const worker = makeWorker({ MAX_LKG_AGE_SEC: '60' });
        await worker.runOnce();
        stub.response = { status: 200, body: 'garbage\n', delayMs: 0 };
        clock.tick(61_000);
        await client.hset('quantum:state:portfolio', 'timestamp', String(NOW_SEC + 61));
        const report = await worker.runOnce();
        expect(report.heat).to.include({ value: 0, source: 'default' });
      });
    });

    it('writes the budget of a symbol with an unusable snapshot, marks its position invalid and counts it; skips a bad key', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await client.hset('quantum:position:snapshot:ETHUSDT', { position_amt: 'lots', entry_price: '3000' });
      await client.hset('quantum:position:snapshot:SOLUSDT', { position_amt: '2' });
      await client.set('quantum:position:snapshot:XRPUSDT', 'not a hash');
      await client.hset('quantum:position:snapshot:bad-symbol', { position_amt: '1', entry_price: '1' });
      const worker = makeWorker();
      const report = await worker.runOnce();
      expect(report.result).to.equal('ok');
      expect(report.written.sort()).to.deep.equal(['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT']);
      expect(report.skipped.map((s) => s.symbol)).to.deep.equal(['quantum:position:snapshot:bad-symbol']);
      for (const symbol of ['ETHUSDT', 'SOLUSDT', 'XRPUSDT']) {
        expect(await client.hgetall(BUDGET(symbol))).to.include({ position_status: 'invalid', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0' });
      }
      expect(await client.hget(BUDGET('ETHUSDT'), 'position_price')).to.equal('3000');
      expect(await client.hget(BUDGET('BTCUSDT'), 'position_status')).to.equal('ok');
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'position' })).to.equal(3);
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'position_snapshot' })).to.equal(1);
    });

    it('reads the cluster from the market hash and its stress; missing stress is 0 without counting', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await client.hset('quantum:state:market:BTCUSDT', { vol_regime: 'NORMAL', cluster_id: 'majors' });
      await client.hset('quantum:cluster:stress:majors', { stress: '0.5' });
      await client.hset('quantum:position:snapshot:ETHUSDT', { position_amt: '1', entry_price: '100' });
      await client.hset('quantum:state:market:ETHUSDT', { vol_regime: 'LOW', cluster_id: 'unknown' });
      const worker = makeWorker();
      await worker.runOnce();
      // 0.4*0.65 + 0.4*0.5 + 0.2*0.33 = 0.526 -> 2000 * 0.474 = 948
      expect(await client.hgetall(BUDGET('BTCUSDT'))).to.include({ cluster_stress: '0.5', stress_factor: '0.526', budget_usd: '948' });
      expect(await client.hgetall(BUDGET('ETHUSDT'))).to.include({ cluster_stress: '0', vol_regime: '0' });
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'cluster_stress' })).to.equal(0);
    });

    it('uses 0 and counts cluster_stress for an invalid cluster stress hash', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC, clusterStress: '1.5' });
      const worker = makeWorker();
      await worker.runOnce();
      expect(await client.hget(BUDGET('BTCUSDT'), 'cluster_stress')).to.equal('0');
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'cluster_stress' })).to.equal(1);
    });

    it('uses NORMAL (0.33) and counts vol_regime for a missing market hash, and sigma when vol_regime is invalid', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await client.del('quantum:marketstate:BTCUSDT');
      await client.hset('quantum:position:snapshot:ETHUSDT', { position_amt: '1', entry_price: '100' });
      await client.hset('quantum:state:market:ETHUSDT', { vol_regime: 'WILD', sigma: '0.035' });
      await client.hset('quantum:position:snapshot:SOLUSDT', { position_amt: '1', entry_price: '100' });
      await client.hset('quantum:state:market:SOLUSDT', { sigma: '0.025' });
      const worker = makeWorker();
      await worker.runOnce();
      expect(await client.hget(BUDGET('BTCUSDT'), 'vol_regime')).to.equal('0.33');
      expect(await client.hget(BUDGET('ETHUSDT'), 'vol_regime')).to.equal('1');
      expect(await client.hget(BUDGET('SOLUSDT'), 'vol_regime')).to.equal('0.67');
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'vol_regime' })).to.equal(2);
    });

    it('never writes NaN, Infinity or a negative number, whatever the input strings', async function () {
      this.timeout(60000);
      const worker = makeWorker({}, { heatSource: fixedHeat(0.3) });
      const junk = fc.oneof(
        fc.constantFrom('NaN', 'Infinity', '-Infinity', '', ' ', '-1', '1e999', '0x10', '1,5', 'abc', '-0', '1e-400', '0.5', '100000'),
        fc.string({ maxLength: 12 }),
        fc.double().map(String),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.record({ amt: junk, entry: junk, mark: junk, vol: junk, sigma: junk, stress: junk, equity: junk, cluster: fc.constantFrom('default', 'x y', '', 'c1') }),
          async (input) => {
            await client.flushall();
            await client.hset('quantum:state:portfolio', { equity_usd: input.equity, timestamp: String(NOW_SEC) });
            await client.hset('quantum:position:snapshot:AAAUSDT', { position_amt: input.amt, entry_price: input.entry, mark_price: input.mark });
            await client.hset('quantum:position:snapshot:BBBUSDT', { position_amt: '1', entry_price: '10' });
            await client.hset('quantum:state:market:AAAUSDT', { vol_regime: input.vol, sigma: input.sigma, cluster_id: input.cluster });
            await client.hset('quantum:state:market:BBBUSDT', { sigma: input.sigma });
            await client.hset('quantum:cluster:stress:default', { stress: input.stress });
            await worker.runOnce();
            for (const key of await client.keys('quantum:portfolio:budget:*')) {
              const hash = await client.hgetall(key);
              expect(BudgetHash.safeParse(hash).success, JSON.stringify(hash)).to.equal(true);
              for (const [field, value] of Object.entries(hash)) {
                expect(value).to.not.match(/nan|inf/i);
                // position_amt is the only signed field.
                if (field !== 'position_amt') expect(value).to.not.match(/^-/);
              }
            }
            for (const [, fields] of await client.xrange(VIOLATIONS, '-', '+')) {
              expect(ViolationStreamEntry.safeParse(entryFields(fields)).success).to.equal(true);
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  });

  describe('budget hash upkeep', () => {
    it('keeps last_violation_ts after the position returns within budget, and updates the other fields', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker();
      await worker.runOnce();
      await client.hset('quantum:state:positions:BTCUSDT', { position_amt: '0.001' });
      clock.tick(5000);
      await worker.runOnce();
      const hash = await client.hgetall(BUDGET('BTCUSDT'));
      expect(hash).to.include({ position_amt: '0.001', position_notional_usd: '100', over_budget_usd: '0', last_violation_ts: String(NOW_SEC), timestamp: String(NOW_SEC + 5) });
      expect(await client.xlen(VIOLATIONS)).to.equal(1);
    });

    it('removes position_price once the position is flat without a price', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker();
      await worker.runOnce();
      expect(await client.hexists(BUDGET('BTCUSDT'), 'position_price')).to.equal(1);
      await client.hset('quantum:state:positions:BTCUSDT', { position_amt: '0', entry_price: '0', mark_price: '0' });
      await worker.runOnce();
      expect(await client.hexists(BUDGET('BTCUSDT'), 'position_price')).to.equal(0);
    });

    it('announces every over-budget symbol once, again each VIOLATION_REPUBLISH_SEC, and keeps the stream near VIOLATION_STREAM_MAXLEN', async () => {
      // Equity 0 clamps every budget to MIN_BUDGET_K (500); each position is 1000 * 11 = 11000 USD.
      await client.hset('quantum:state:portfolio', { equity_usd: '0', timestamp: String(NOW_SEC) });
      const symbols = await seedSymbols(client, 300);
      for (const symbol of symbols) await client.hset(`quantum:state:positions:${symbol}`, { position_amt: '1000.0' });
      const worker = makeWorker({ VIOLATION_STREAM_MAXLEN: '100', VIOLATION_REPUBLISH_SEC: '10' }, { heatSource: fixedHeat(0.5) });
      expect((await worker.runOnce()).violations).to.have.length(300);
      expect((await worker.runOnce()).violations).to.have.length(0);
      for (let i = 0; i < 3; i++) {
        clock.tick(10_000);
        await client.hset('quantum:state:portfolio', 'timestamp', String(Math.floor(Date.now() / 1000)));
        expect((await worker.runOnce()).violations).to.have.length(300);
      }
      const length = await client.xlen(VIOLATIONS);
      expect(length).to.be.at.least(100);
      expect(length).to.be.below(900);
    });
  });

  describe('mode as a run-time feature flag', () => {
    it('applies an override to the hashes, p28_enforce_mode and the audit stream within one cycle', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker();
      await worker.runOnce();
      expect(await client.hget(BUDGET('BTCUSDT'), 'mode')).to.equal('shadow');
      expect(await metricValue(worker.metrics.registry, 'p28_enforce_mode')).to.equal(0);

      await client.set('quantum:p28:mode', 'enforce');
      clock.tick(5000);
      const report = await worker.runOnce();
      expect(report).to.include({ mode: 'enforce', modeSource: 'override' });
      expect(await client.hget(BUDGET('BTCUSDT'), 'mode')).to.equal('enforce');
      expect(await metricValue(worker.metrics.registry, 'p28_enforce_mode')).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_budget_blocks_total', { symbol: 'BTCUSDT' })).to.equal(1);
      const violation = await client.xrevrange(VIOLATIONS, '+', '-', 'COUNT', 1);
      expect(entryFields(violation[0]![1]).mode).to.equal('enforce');

      const audit = (await client.xrange('quantum:stream:p28.mode', '-', '+')).map(([, f]) => entryFields(f));
      expect(audit).to.deep.equal([
        { from: 'none', to: 'shadow', source: 'env', instance: 'test-worker', timestamp: String(NOW_SEC) },
        { from: 'shadow', to: 'enforce', source: 'override', instance: 'test-worker', timestamp: String(NOW_SEC + 5) },
      ]);

      await client.del('quantum:p28:mode');
      await worker.runOnce();
      expect(await client.hget(BUDGET('BTCUSDT'), 'mode')).to.equal('shadow');
      expect(await metricValue(worker.metrics.registry, 'p28_enforce_mode')).to.equal(0);
      expect(entryFields((await client.xrevrange('quantum:stream:p28.mode', '+', '-', 'COUNT', 1))[0]![1])).to.include({ from: 'enforce', to: 'shadow', source: 'env' });
    });

    it('audits a switch once, not again on later cycles nor by a replica that takes over', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const first = makeWorker();
      const second = makeWorker();
      await first.runOnce();
      await second.runOnce(); // started, standing by
      await client.set('quantum:p28:mode', 'enforce');
      await first.runOnce();
      await first.runOnce();
      await first.stop();
      await second.runOnce();
      expect(await client.hget(BUDGET('BTCUSDT'), 'mode')).to.equal('enforce');
      // none -> shadow at the first cycle, shadow -> enforce once.
      expect(await client.xlen('quantum:stream:p28.mode')).to.equal(2);
    });

    it('records the switch even in a cycle that writes no budgets', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC - 3600 });
      const worker = makeWorker();
      await worker.runOnce();
      await client.set('quantum:p28:mode', 'enforce');
      const report = await worker.runOnce();
      expect(report.result).to.equal('skipped');
      expect(await metricValue(worker.metrics.registry, 'p28_enforce_mode')).to.equal(1);
      expect(await client.xlen('quantum:stream:p28.mode')).to.equal(2);
    });

    it('ignores and counts an invalid override, keeping P28_MODE', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker({ P28_MODE: 'shadow' });
      await worker.runOnce();
      await client.set('quantum:p28:mode', 'block-everything');
      const report = await worker.runOnce();
      expect(report).to.include({ mode: 'shadow', modeSource: 'env' });
      expect(await client.hget(BUDGET('BTCUSDT'), 'mode')).to.equal('shadow');
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'mode_override' })).to.equal(1);
    });

    it('enforces only the canary symbols under enforce; the rest stay in shadow', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await seedGuideScenario(client, { timestampSec: NOW_SEC, symbol: 'ETHUSDT', positionAmt: '20', entryPrice: '3000' });
      const worker = makeWorker({ P28_MODE: 'enforce', P28_ENFORCE_SYMBOLS: 'BTCUSDT' });
      const report = await worker.runOnce();
      expect(report.mode).to.equal('enforce');
      expect(await client.hget(BUDGET('BTCUSDT'), 'mode')).to.equal('enforce');
      expect(await client.hget(BUDGET('ETHUSDT'), 'mode')).to.equal('shadow');
      expect(report.violations.map((v) => [v.symbol, v.mode]).sort()).to.deep.equal([['BTCUSDT', 'enforce'], ['ETHUSDT', 'shadow']]);
      expect(await metricValue(worker.metrics.registry, 'p28_budget_blocks_total', { symbol: 'BTCUSDT' })).to.equal(1);
      expect(await metricValue(worker.metrics.registry, 'p28_budget_blocks_total', { symbol: 'ETHUSDT' })).to.equal(0);
      expect(await metricValue(worker.metrics.registry, 'p28_enforce_mode')).to.equal(1);
    });
  });

  describe('Redis round trips', () => {
    async function socketWritesOfOneCycle(worker: BudgetWorker): Promise<{ writes: number; commands: number; scanPages: number }> {
      const before = await totalCalls();
      let report: Awaited<ReturnType<BudgetWorker['runOnce']>> | undefined;
      const writes = await socketWrites(workerClient, async () => {
        report = await worker.runOnce();
      });
      expect(report?.result).to.equal('ok');
      return { writes, commands: (await totalCalls()) - before - 1, scanPages: report!.scanPages };
    }
    async function totalCalls(): Promise<number> {
      const info = await client.info('commandstats');
      return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    }

    it('does not grow with the number of symbols (10 vs 500)', async function () {
      this.timeout(30000);
      await client.hset('quantum:state:portfolio', { equity_usd: '100000', timestamp: String(NOW_SEC) });
      const worker = makeWorker({}, { heatSource: fixedHeat(0.3) });
      await seedSymbols(client, 10);
      await worker.runOnce(); // takes the lease and loads the scripts
      const small = await socketWritesOfOneCycle(worker);
      await seedSymbols(client, 490, 10);
      const large = await socketWritesOfOneCycle(worker);
      // One page for each of the four input families: positions and market state, live and legacy.
      expect(small.scanPages).to.equal(4);
      expect(large.scanPages).to.equal(4);
      expect(large.writes).to.equal(small.writes);
      // lease renewal, inputs head, four SCANs (positions and market state, live and legacy), symbols, clusters, writes, heartbeat, cycle history
      expect(small.writes).to.equal(11);
      expect(large.commands).to.be.greaterThan(small.commands * 20);
    });
  });

  describe('the symbol universe', () => {
    const openBuy = { planId: 'open-1', symbol: 'SOLUSDT', action: 'OPEN', side: 'BUY' as const, notionalUsd: 5000 };

    it('writes a flat hash for a symbol with only a market hash, so an OPEN over budget is blocked under enforce', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await client.hset('quantum:state:market:SOLUSDT', { vol_regime: 'HIGH_VOL' });
      const report = await makeWorker({ P28_MODE: 'enforce' }).runOnce();
      expect(report.written.sort()).to.deep.equal(['BTCUSDT', 'SOLUSDT']);
      const hash = await client.hgetall(BUDGET('SOLUSDT'));
      expect(hash).to.include({ position_amt: '0', position_notional_usd: '0', over_budget_usd: '0', mode: 'enforce', position_status: 'ok' });
      expect(decideFromBudgetFields(openBuy, hash, NOW, DEFAULT_POLICY)).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget' });
    });

    it('writes a hash for every P28_SYMBOLS symbol, held or tracked or not', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const report = await makeWorker({ P28_SYMBOLS: 'XRPUSDT,DOGEUSDT' }).runOnce();
      expect(report.written.sort()).to.deep.equal(['BTCUSDT', 'DOGEUSDT', 'XRPUSDT']);
      expect(await client.hgetall(BUDGET('XRPUSDT'))).to.include({ position_amt: '0', vol_regime: '0.33' });
    });

    it('caps the universe at P28_MAX_SYMBOLS, held symbols first, counts the rest and logs it once', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      for (const symbol of ['AUSDT', 'BUSDT', 'CUSDT']) await client.hset(`quantum:state:market:${symbol}`, { vol_regime: 'LOW' });
      const lines: { msg: string }[] = [];
      const logger = { warn: (_o: unknown, msg: string) => lines.push({ msg }), info: () => undefined, error: () => undefined, debug: () => undefined } as unknown as NonNullable<BudgetWorkerOptions['logger']>;
      const worker = makeWorker({ P28_MAX_SYMBOLS: '2', P28_SYMBOLS: 'ZUSDT' }, { logger });
      const first = await worker.runOnce();
      await worker.runOnce();
      expect(first.written.sort()).to.deep.equal(['BTCUSDT', 'ZUSDT']);
      expect(first.overCap).to.equal(3);
      expect(await metricValue(worker.metrics.registry, 'p28_symbols_over_cap_total')).to.equal(6);
      expect(lines.filter((l) => l.msg.includes('P28_MAX_SYMBOLS'))).to.have.length(1);
    });

    it('leaves a symbol outside the universe without a hash: the gate fails open with no_budget_data', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await makeWorker({ P28_MODE: 'enforce' }).runOnce();
      const hash = await client.hgetall(BUDGET('SOLUSDT'));
      expect(decideFromBudgetFields(openBuy, hash, NOW, DEFAULT_POLICY)).to.include({ allow: true, failOpen: true, reason: 'no_budget_data' });
    });
  });

  describe('vol regime names of the live system', () => {
    // Heat 0.65 and cluster 0: stress = 0.4*0.65 + 0.2*vol; base budget 2000.
    it('HIGH_VOL contributes 0.67: stress 0.394, budget 1212', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC, volRegime: 'HIGH_VOL' });
      await makeWorker().runOnce();
      expect(await client.hgetall(BUDGET('BTCUSDT'))).to.include({ vol_regime: '0.67', stress_factor: '0.394', budget_usd: '1212' });
    });

    it('EXTREME_VOL contributes 1.0: stress 0.46, budget 1080; high_vol_trending reads as HIGH', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC, volRegime: 'EXTREME_VOL' });
      await seedGuideScenario(client, { timestampSec: NOW_SEC, symbol: 'ETHUSDT', volRegime: 'high_vol_trending' });
      const worker = makeWorker();
      await worker.runOnce();
      expect(await client.hgetall(BUDGET('BTCUSDT'))).to.include({ vol_regime: '1', stress_factor: '0.46', budget_usd: '1080' });
      expect(await client.hget(BUDGET('ETHUSDT'), 'vol_regime')).to.equal('0.67');
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'vol_regime' })).to.equal(0);
    });

    it('counts an unknown name and falls to sigma', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await client.del('quantum:marketstate:BTCUSDT');
      await client.hset('quantum:state:market:BTCUSDT', { vol_regime: 'VERY_HIGH', sigma: '0.025' });
      const worker = makeWorker();
      await worker.runOnce();
      expect(await client.hget(BUDGET('BTCUSDT'), 'vol_regime')).to.equal('0.67');
      expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'vol_regime' })).to.equal(1);
    });
  });

  describe('absurd position snapshots', () => {
    const snapshots: [string, Record<string, string>][] = [
      ['1e308 x 1e308', { position_amt: '1e308', mark_price: '1e308', entry_price: '1' }],
      ['a negative price', { position_amt: '2', mark_price: '-5', entry_price: '-5' }],
      ['a notional beyond a finite number of cents', { position_amt: '1e300', entry_price: '1e7' }],
    ];
    for (const [what, snapshot] of snapshots) {
      it(`still writes the budget for ${what}, position_status=invalid, counted as position, the cycle ok`, async () => {
        await seedGuideScenario(client, { timestampSec: NOW_SEC });
        await client.hset('quantum:position:snapshot:ETHUSDT', snapshot);
        const worker = makeWorker({ P28_MODE: 'enforce' });
        const report = await worker.runOnce();
        expect(report.result).to.equal('ok');
        const hash = await client.hgetall(BUDGET('ETHUSDT'));
        expect(hash).to.include({ position_status: 'invalid', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0', budget_usd: '1348' });
        for (const value of Object.values(hash)) expect(value).not.to.match(/NaN|Infinity/);
        expect(BudgetHash.safeParse(hash).success).to.equal(true);
        expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'position' })).to.equal(1);
        expect(await metricValue(worker.metrics.registry, 'p28_redis_write_fail_total')).to.equal(0);
        const add = { planId: 'add-1', symbol: 'ETHUSDT', action: 'ADD', side: 'BUY' as const, notionalUsd: 2000 };
        expect(decideFromBudgetFields(add, hash, NOW, DEFAULT_POLICY)).to.include({ allow: false, reason: 'p28_budget_violation', projectedNotionalUsd: 2000 });
      });
    }
  });

  describe('violation cadence', () => {
    const runFor = async (worker: BudgetWorker, cycles: number, stepMs: number) => {
      for (let i = 0; i < cycles; i++) {
        clock.tick(stepMs);
        const nowSec = String(Math.floor(Date.now() / 1000));
        await client.hset('quantum:state:portfolio', 'timestamp', nowSec);
        // The position state brain reads the exchange again every few seconds.
        for (const key of await client.keys('quantum:state:positions:*')) await client.hset(key, 'ts_epoch', nowSec);
        const report = await worker.runOnce();
        expect(report.result).to.equal('ok');
      }
    };

    it('30 minutes over budget at a 5 s interval add about 30*60/VIOLATION_REPUBLISH_SEC entries, and last_violation_ts stays fresh', async function () {
      this.timeout(60000);
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker({ VIOLATION_REPUBLISH_SEC: '10' });
      await worker.runOnce();
      await runFor(worker, (30 * 60) / 5, 5000);
      const entries = await client.xlen(VIOLATIONS);
      expect(entries).to.be.within(180, 182);
      expect(await client.hget(BUDGET('BTCUSDT'), 'last_violation_ts')).to.equal(String(Math.floor(Date.now() / 1000)));
    });

    it('announces at once when the over-budget amount moves by more than 1 %, and not for a smaller move', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker({ VIOLATION_REPUBLISH_SEC: '60' });
      await worker.runOnce();
      await runFor(worker, 2, 1000);
      expect(await client.xlen(VIOLATIONS)).to.equal(1);
      // 48652 over; 0.504 BTC is 50400, 400 more over (0.8 %): not news.
      await client.hset('quantum:state:positions:BTCUSDT', 'position_amt', '0.504');
      await runFor(worker, 1, 1000);
      expect(await client.xlen(VIOLATIONS)).to.equal(1);
      // 0.52 BTC is 52000, 3.4 % more over: news.
      await client.hset('quantum:state:positions:BTCUSDT', 'position_amt', '0.52');
      await runFor(worker, 1, 1000);
      expect(await client.xlen(VIOLATIONS)).to.equal(2);
      const last = entryFields((await client.xrevrange(VIOLATIONS, '+', '-', 'COUNT', 1))[0]![1]);
      expect(last).to.include({ over_budget: '50652', position_notional: '52000' });
    });

    it('announces again at once a symbol that went back within budget and then over', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker({ VIOLATION_REPUBLISH_SEC: '60' });
      await worker.runOnce();
      await client.hset('quantum:state:positions:BTCUSDT', 'position_amt', '0.001');
      await runFor(worker, 1, 1000);
      await client.hset('quantum:state:positions:BTCUSDT', 'position_amt', '0.5');
      await runFor(worker, 1, 1000);
      expect(await client.xlen(VIOLATIONS)).to.equal(2);
    });
  });

  describe('failures', () => {
    it('a budget key of the wrong type costs only its symbol: counted and named, the other symbols written, the cycle ok; rewritten once the key is gone', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      await seedGuideScenario(client, { timestampSec: NOW_SEC, symbol: 'ETHUSDT' });
      await client.set(BUDGET('ETHUSDT'), 'a string where a hash belongs');
      const worker = makeWorker();
      const first = await worker.runOnce();
      expect(first.result).to.equal('ok');
      expect(first.writeFailures).to.deep.equal([]);
      expect(first.written).to.deep.equal(['BTCUSDT']);
      expect(await metricValue(worker.metrics.registry, 'p28_redis_write_fail_total')).to.equal(0);
      expect(await metricValue(worker.metrics.registry, 'p28_invalid_keys_total', { key_kind: 'budget', problem: 'wrong_type' })).to.equal(1);
      expect(worker.healthFacts.invalidKeys?.map((k) => k.key)).to.deep.equal([BUDGET('ETHUSDT')]);

      await client.del(BUDGET('ETHUSDT'));
      const next = await worker.runOnce();
      expect(next.result).to.equal('ok');
      expect(next.written).to.deep.equal(['BTCUSDT', 'ETHUSDT']);
      expect(await client.hget(BUDGET('ETHUSDT'), 'budget_usd')).to.equal('1348');
      expect(worker.healthFacts.invalidKeys).to.deep.equal([]);
    });

    it('reports a failed cycle, counts it and carries on when the heat source throws', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      let calls = 0;
      const flaky: HeatReader = {
        read: async () => {
          calls += 1;
          if (calls === 1) throw new Error('boom');
          return { value: 0.65, source: 'live' };
        },
      };
      const worker = makeWorker({}, { heatSource: flaky });
      const first = await worker.runOnce();
      expect(first.heat).to.include({ source: 'default', value: 0 });
      const second = await worker.runOnce();
      expect(second.result).to.equal('ok');
      expect(await client.hget(BUDGET('BTCUSDT'), 'budget_usd')).to.equal('1348');
    });
  });

  describe('the loop', () => {
    it('never overlaps a cycle with the next, even when a cycle outlasts the interval', async function () {
      clock.restore();
      await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
      let running = 0;
      let maxRunning = 0;
      let cycles = 0;
      const slowHeat: HeatReader = {
        read: async () => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 120));
          running -= 1;
          cycles += 1;
          return { value: 0.65, source: 'live' };
        },
      };
      const worker = makeWorker({ BUDGET_COMPUTE_INTERVAL_SEC: '0.05' }, { heatSource: slowHeat });
      worker.start();
      worker.start();
      await new Promise((r) => setTimeout(r, 700));
      await worker.stop();
      expect(cycles).to.be.at.least(3);
      expect(maxRunning).to.equal(1);
    });

    it('keeps running after failing cycles', async () => {
      clock.restore();
      await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
      const worker = makeWorker({ BUDGET_COMPUTE_INTERVAL_SEC: '0.05' }, { heatSource: fixedHeat(0.65) });
      // The first three lease requests fail as they would with Redis gone.
      type HoldLease = (...args: unknown[]) => Promise<unknown>;
      const scripted = workerClient as unknown as { p28HoldLease: HoldLease };
      const realHold = scripted.p28HoldLease.bind(workerClient);
      let failures = 0;
      const set = sinon.stub(scripted, 'p28HoldLease').callsFake((...args: unknown[]) => {
        if (failures < 3) {
          failures += 1;
          return Promise.reject(new Error('Connection is closed.'));
        }
        return realHold(...args);
      });
      worker.start();
      try {
        await eventually(async () => (await client.exists(BUDGET('BTCUSDT'))) === 1);
      } finally {
        await worker.stop();
        set.restore();
      }
      expect(await client.hget(BUDGET('BTCUSDT'), 'budget_usd')).to.equal('1348');
      expect(await metricValue(worker.metrics.registry, 'p28_cycles_total', { result: 'failed' })).to.equal(3);
      expect(await metricValue(worker.metrics.registry, 'p28_redis_write_fail_total')).to.equal(3);
    });

    it('stop() waits for the running cycle and releases the lease', async () => {
      await seedGuideScenario(client, { timestampSec: NOW_SEC });
      const worker = makeWorker();
      const cycle = worker.runOnce();
      await worker.stop();
      expect((await cycle).result).to.equal('ok');
      expect(await client.exists('quantum:p28:worker:lease')).to.equal(0);
      expect(await metricValue(worker.metrics.registry, 'p28_is_leader')).to.equal(0);
    });
  });

  describe('on a Redis Cluster', () => {
    const redisCluster = useRedisCluster();

    it('discovers symbols on every node and writes budgets, violations and the lease without cross-slot errors', async () => {
      await redisCluster.client.hset('quantum:state:portfolio', { equity_usd: '100000', timestamp: String(NOW_SEC) });
      const symbols = await seedSymbols(redisCluster.client, 40);
      await redisCluster.client.hset('quantum:position:snapshot:BTCUSDT', { position_amt: '0.5', entry_price: '100000' });
      await redisCluster.client.hset('quantum:state:market:BTCUSDT', { vol_regime: 'NORMAL' });
      const worker = new BudgetWorker({
        config: workerConfig(redis.server, { REDIS_CLUSTER_NODES: redisCluster.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',') }),
        redis: redisCluster.client,
        heatSource: fixedHeat(0.65),
      });
      const report = await worker.runOnce();
      expect(report.result).to.equal('ok');
      // The four input families, on each of the three masters.
      expect(report.scanPages).to.equal(12);
      expect(report.written).to.have.length(41);
      expect(report.written).to.include.members(symbols);
      expect(await redisCluster.client.hgetall(BUDGET('BTCUSDT'))).to.include({ budget_usd: '1348', stress_factor: '0.326', over_budget_usd: '48652' });
      expect(await redisCluster.client.ttl(BUDGET('S39USDT'))).to.be.within(1, 60);
      expect(await redisCluster.client.xlen(VIOLATIONS)).to.equal(1);
      await worker.stop();
      expect(await redisCluster.client.exists('quantum:p28:worker:lease')).to.equal(0);
    });
  });
});
