import { expect } from 'chai';
import type { RedisClient } from '../../../lib/redis/client';
import type { HeatGateStub } from '../../support/heat-gate-stub';
import { useWorkerInputs } from '../../support/worker-inputs';
import { eventually } from '../../support/redis';
import { seedGuideScenario, seedSymbols } from '../../support/seed';
import { runWorkerProcess, type WorkerProcess } from '../../support/worker-process';
import { seriesValue } from '../../support/metric-values';

const MODE_KEY = 'quantum:p28:mode';

describe('bad keys cost only themselves (real processes)', function () {
  this.timeout(60000);
  let client: RedisClient;
  let stub: HeatGateStub;
  const redis = useWorkerInputs((c, s) => {
    client = c;
    stub = s;
  });
  const running: WorkerProcess[] = [];

  beforeEach(async () => {
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
  });
  afterEach(async () => {
    for (const w of running.splice(0)) await w.kill();
  });

  const start = () => {
    const w = runWorkerProcess([], {
      REDIS_URL: redis.server.url,
      HEAT_GATE_METRICS_URL: stub.url,
      PORT: '0',
      LOG_LEVEL: 'info',
      P28_INSTANCE_ID: 'proc-a',
      P28_MODE: 'enforce',
      BUDGET_COMPUTE_INTERVAL_SEC: '0.3',
      HEALTH_MAX_BUDGET_AGE_SEC: '2',
    });
    running.push(w);
    return w;
  };
  const get = async (w: WorkerProcess, path: string) => {
    const res = await fetch(`http://127.0.0.1:${await w.port()}${path}`);
    return { status: res.status, text: await res.text() };
  };
  const cycles = (w: WorkerProcess) => w.logLines().filter((l) => l.msg === 'cycle' || String(l.msg ?? '').startsWith('cycle failed'));

  it('a wrong-type quantum:p28:mode at start is no override: P28_MODE applies, cycles are ok, the key is named and /health stays 200', async () => {
    await client.rpush(MODE_KEY, 'enforce');
    const w = start();
    await eventually(async () => (await client.hget('quantum:portfolio:budget:BTCUSDT', 'mode')) === 'enforce', 20000, 50);
    await eventually(() => cycles(w).length >= 5, 20000, 50);
    await new Promise((r) => setTimeout(r, 2500));
    expect(cycles(w).every((l) => l.result === 'ok'), JSON.stringify(cycles(w).slice(0, 2))).to.equal(true);
    const health = await get(w, '/health');
    expect(health.status, health.text).to.equal(200);
    expect(JSON.parse(health.text).invalid_keys.join(' ')).to.contain(`${MODE_KEY} (wrong_type`);
    expect(await client.type(MODE_KEY)).to.equal('list');
  });

  it('a wrong-type budget key among many, heartbeat and violation stream cost only themselves: every other budget written, cycles ok, /health 200 naming them', async () => {
    const symbols = await seedSymbols(client, 200);
    const bad = `quantum:portfolio:budget:${symbols[7]}`;
    await client.set(bad, 'not a hash');
    await client.set('quantum:p28:worker:heartbeat', 'not a hash');
    await client.set('quantum:stream:budget.violation', 'not a stream');
    const w = start();
    await eventually(() => cycles(w).length >= 6, 20000, 50);
    // Past HEALTH_MAX_BUDGET_AGE_SEC, so an unknown budget age would show.
    await new Promise((r) => setTimeout(r, 2500));
    const all = cycles(w);
    expect(all.every((l) => l.result === 'ok'), JSON.stringify(all.find((l) => l.result !== 'ok'))).to.equal(true);
    // Every other symbol has its budget; the guide's BTCUSDT (over budget) too.
    const written = await Promise.all(symbols.filter((_, i) => i !== 7).map((s) => client.exists(`quantum:portfolio:budget:${s}`)));
    expect(written.every((n) => n === 1)).to.equal(true);
    expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');

    const health = await get(w, '/health');
    expect(health.status, health.text).to.equal(200);
    const named = JSON.parse(health.text).invalid_keys.join(' ');
    expect(named).to.contain(`${bad} (wrong_type`).and.contain('quantum:p28:worker:heartbeat (wrong_type').and.contain('quantum:stream:budget.violation (wrong_type');
    const metrics = (await get(w, '/metrics')).text;
    for (const kind of ['budget', 'heartbeat', 'violation_stream']) {
      expect(seriesValue(metrics, `p28_invalid_keys_total{key_kind="${kind}",problem="wrong_type"}`), kind).to.be.above(0);
    }
    expect(seriesValue(metrics, 'p28_cycles_total{result="failed"}')).to.equal(0);
  });
});
