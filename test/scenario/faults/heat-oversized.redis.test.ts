import { expect } from 'chai';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import { HeatGateStub, heatExposition } from '../../support/heat-gate-stub';
import { connectedClient, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';
import { metricValue } from '../../support/metric-values';
import type { RedisClient } from '../../../lib/redis/client';

const MB = 1024 * 1024;

describe('P2.6 answers tens of MB', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;
  let stub: HeatGateStub;

  before(async () => {
    client = await connectedClient(redis.server);
    stub = await HeatGateStub.start();
  });
  after(async () => {
    client.disconnect();
    await stub.close();
  });

  it('cuts the answer at HEAT_MAX_BYTES: RSS grows < 100 MB, each cycle ends within the heat timeout + 1 s, the last known heat is used and counted', async () => {
    await client.flushall();
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const config = workerConfig(redis.server, { HEAT_GATE_METRICS_URL: stub.url, HEAT_FETCH_TIMEOUT_MS: '5000' });
    const worker = new BudgetWorker({ config, redis: client });
    stub.serveHeat(0.65);
    expect((await worker.runOnce()).heat).to.include({ value: 0.65, source: 'live' });

    stub.response = { status: 200, body: heatExposition(0.15), delayMs: 0, padBytes: 40 * MB };
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const durations: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const report = await worker.runOnce();
        durations.push(report.durationMs);
        expect(report.result).to.equal('ok');
        expect(report.heat).to.include({ value: 0.65, source: 'lkg', failure: 'too_large' });
      }
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(peak - baseline, `RSS growth ${((peak - baseline) / MB).toFixed(1)} MB`).to.be.below(100 * MB);
    expect(Math.max(...durations)).to.be.below(config.heatFetchTimeoutMs + 1000);
    expect(await metricValue(worker.metrics.registry, 'p28_stale_input_total', { input_type: 'heat' })).to.equal(3);
    expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');
  });
});
