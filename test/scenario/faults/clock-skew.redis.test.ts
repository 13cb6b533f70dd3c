import { expect } from 'chai';
import { BudgetGate } from '../../../plugin/budget-gate';
import type { RedisClient } from '../../../lib/redis/client';
import type { HeatGateStub } from '../../support/heat-gate-stub';
import { useWorkerInputs } from '../../support/worker-inputs';
import { eventually } from '../../support/redis';
import { seedGuideScenario } from '../../support/seed';
import { runWorkerProcess, type WorkerProcess } from '../../support/worker-process';
import { seriesValue } from '../../support/metric-values';

const BUDGET = 'quantum:portfolio:budget:BTCUSDT';
const HEARTBEAT = 'quantum:p28:worker:heartbeat';
const OPEN = { planId: 'p-1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY' as const, qty: 0.01 };

async function serverNowMs(client: RedisClient): Promise<number> {
  const [sec, usec] = await client.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

describe('one clock: a host whose clock is wrong (real processes, clock skewed with a preload)', function () {
  this.timeout(90000);
  let client: RedisClient;
  let stub: HeatGateStub;
  const redis = useWorkerInputs((c, s) => {
    client = c;
    stub = s;
  });
  const running: WorkerProcess[] = [];
  afterEach(async () => {
    for (const w of running.splice(0)) await w.kill();
  });

  const start = (skewMs: number, env: Record<string, string> = {}) => {
    const w = runWorkerProcess([], {
      REDIS_URL: redis.server.url,
      HEAT_GATE_METRICS_URL: stub.url,
      PORT: '0',
      LOG_LEVEL: 'info',
      P28_INSTANCE_ID: `skewed${skewMs}`,
      P28_MODE: 'enforce',
      BUDGET_COMPUTE_INTERVAL_SEC: '0.5',
      ...env,
    }, { clockSkewMs: skewMs });
    running.push(w);
    return w;
  };
  const http = async (w: WorkerProcess, path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${await w.port()}${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };

  it('a worker 20 s ahead stamps budgets with Redis\'s time, so a gate with a right clock blocks as the worker\'s own gate does', async () => {
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const w = start(20_000);
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 30000, 50);

    const stamped = Number(await client.hget(BUDGET, 'timestamp'));
    expect(Math.abs(stamped * 1000 - (await serverNowMs(client)))).to.be.below(3000);

    const gate = new BudgetGate({ redisUrl: redis.server.url });
    try {
      await gate.ready();
      const local = await gate.evaluate(OPEN);
      expect(local.reason, JSON.stringify(local)).to.equal('p28_budget_violation');
      expect(local.allow).to.equal(false);
    } finally {
      await gate.close();
    }
    const remote = (await http(w, '/v1/decisions', OPEN)).json();
    expect(remote.reason).to.equal('p28_budget_violation');

    const health = await http(w, '/health');
    expect(health.status).to.equal(200);
    const skew = seriesValue((await http(w, '/metrics')).text, 'p28_clock_skew_seconds');
    expect(skew).to.be.within(19, 21);
  });

  it('a leader 10 min ahead still enforces, exports a heartbeat on Redis\'s clock, and /health degrades once the portfolio feed stops', async () => {
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const w = start(600_000, { HEALTH_MAX_BUDGET_AGE_SEC: '3', MAX_LKG_AGE_SEC: '0' });
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 30000, 50);

    // The skewed host's own gate (POST /v1/decisions) enforces.
    const decision = (await http(w, '/v1/decisions', OPEN)).json();
    expect(decision.reason, JSON.stringify(decision)).to.equal('p28_budget_violation');

    const beat = Number(await client.hget(HEARTBEAT, 'last_success_ts'));
    expect(Math.abs(beat - (await serverNowMs(client)))).to.be.below(3000);
    const written = seriesValue((await http(w, '/metrics')).text, 'p28_budgets_written_timestamp_seconds')!;
    expect(Math.abs(written * 1000 - (await serverNowMs(client)))).to.be.below(3000);

    // The feed stops: no portfolio state, so no budgets and no heartbeat are written.
    await client.del('quantum:state:portfolio');
    const stopped = Date.now();
    let body: Record<string, unknown> = {};
    await eventually(async () => {
      const h = await http(w, '/health');
      body = h.json();
      return h.status === 503;
    }, 15000, 100);
    expect(body.status).to.equal('degraded');
    // Budget age limit 3 s, plus a few cycles of margin.
    expect(Date.now() - stopped).to.be.below(8000);
  });

  it('a heartbeat from the future is ignored, counted and named in /health', async () => {
    // Nothing is written by this worker: no portfolio state.
    const w = start(0, { HEALTH_MAX_BUDGET_AGE_SEC: '2' });
    await w.port();
    const future = (await serverNowMs(client)) + 600_000;
    await client.hset(HEARTBEAT, { last_success_ts: String(future), leader: 'old-release', symbols_written: '1', cycle_ms: '3' });

    let body: Record<string, unknown> = {};
    await eventually(async () => {
      const h = await http(w, '/health');
      body = h.json();
      return h.status === 503;
    }, 15000, 100);
    expect(body.status).to.equal('degraded');
    expect(String(body.reason)).to.contain("ahead of Redis's clock").and.contain('old-release');
    expect((body.invalid_keys as string[]).join(' ')).to.contain(`${HEARTBEAT} (from_the_future`);
    const metrics = (await http(w, '/metrics')).text;
    expect(seriesValue(metrics, 'p28_invalid_keys_total{key_kind="heartbeat",problem="from_the_future"}')).to.be.above(0);
    const written = seriesValue(metrics, 'p28_budgets_written_timestamp_seconds') ?? 0;
    expect(written * 1000).to.be.below(future - 60_000);
  });
});
