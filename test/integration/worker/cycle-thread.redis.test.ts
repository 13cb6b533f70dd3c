import { expect } from 'chai';
import { join } from 'node:path';
import type { RedisClient } from '../../../lib/redis/client';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { HeatGateStub } from '../../support/heat-gate-stub';
import { captureLogs } from '../../support/log-capture';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { metricValue, seedGuideScenario, workerConfig } from '../../support/seed';

const BUDGET = 'quantum:portfolio:budget:BTCUSDT';
const LEASE = 'quantum:p28:worker:lease';

describe('the budget cycle in a thread of its own (P28_CYCLE_THREAD=1, real redis-server)', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let heat: HeatGateStub;
  let client: RedisClient;
  let service: WorkerServiceHandle | undefined;

  before(async () => {
    heat = await HeatGateStub.start();
    heat.serveHeat(0.65);
    client = await connectedClient(redis.server);
  });
  beforeEach(async () => {
    await client.flushall();
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
  });
  after(async () => {
    client.disconnect();
    await heat.close();
  });

  const config = (env: Record<string, string> = {}) =>
    workerConfig(redis.server, { PORT: '0', HEAT_GATE_METRICS_URL: heat.url, BUDGET_COMPUTE_INTERVAL_SEC: '0.2', BUDGET_HASH_TTL_SEC: '10', LEASE_TTL_MS: '1000', ...env });
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${service!.port}${path}`);
    return { status: res.status, text: await res.text() };
  };
  const health = async () => {
    const { status, text } = await get('/health');
    return { status, body: JSON.parse(text) as Record<string, unknown> };
  };
  const decide = async () => {
    const res = await fetch(`http://127.0.0.1:${service!.port}/v1/decisions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ planId: `p-${Date.now()}`, symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.001 }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('serves /health, /metrics with the worker\'s metrics, and decisions over cycles, and stops cleanly, releasing the lease', async () => {
    const { logger, lines } = captureLogs();
    service = await startWorkerService(config(), { logger, processMetrics: false });
    expect(service.cycles).to.equal('thread');
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 15000);
    await eventually(() => service!.worker.lastCycle?.result === 'ok', 5000);
    const okBefore = await metricValue(service.metrics.registry, 'p28_cycles_total', { result: 'ok' });
    expect(okBefore).to.be.at.least(1);

    const { status, body } = await health();
    expect(status).to.equal(200);
    expect(body).to.include({ status: 'healthy', role: 'leader', redis: 'connected', mode: 'shadow', last_cycle_result: 'ok' });

    const metrics = await get('/metrics');
    expect(metrics.status).to.equal(200);
    // The thread's metrics, under their own names and values, beside the gate's of the main thread.
    expect(metrics.text).to.match(/^p28_budget_value_usd\{symbol="BTCUSDT"\} 1348$/m);
    expect(metrics.text).to.match(/^# TYPE p28_cycles_total counter$/m);
    expect(metrics.text).to.match(/^# TYPE p28_clock_skew_seconds gauge$/m);
    expect(metrics.text).to.match(/^# TYPE p28_gate_decision_duration_seconds histogram$/m);
    // The cycle thread's own heap, which the main thread's nodejs_heap_size_used_bytes does not show.
    const cycleHeap = Number(/^p28_cycle_heap_used_bytes (\S+)$/m.exec(metrics.text)?.[1]);
    expect(cycleHeap).to.be.greaterThan(0);
    expect(metrics.text).to.match(/^p28_cycle_thread_restarts_total 0$/m);
    expect((await service.metrics.registry.getMetricsAsJSON()).map((m) => m.name)).to.include.members(['p28_cycles_total', 'p28_gate_decision_duration_seconds']);

    // Decided from the budget hash (a read that outlives the gate's 50 ms on a loaded machine fails open: asked again).
    const answers: Record<string, unknown>[] = [];
    await eventually(async () => {
      const decision = await decide();
      expect(decision.status).to.equal(200);
      answers.push(decision.body);
      return decision.body.failOpen === false;
    }, 10000, 100).catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(answers.slice(-3))}`);
    });
    expect(answers.at(-1)).to.include({ allow: true, source: 'redis', mode: 'shadow' });

    // More cycles go by: the state and the metrics the main thread serves follow them.
    await eventually(async () => (await metricValue(service!.metrics.registry, 'p28_cycles_total', { result: 'ok' })) >= okBefore + 2, 10000);
    expect((await health()).status).to.equal(200);
    // The thread's log lines reach the service's logger, as JSON objects with their fields.
    expect(lines.some((l) => l.msg === 'cycle' && l.result === 'ok' && l.role === 'leader')).to.equal(true);
    expect(lines.find((l) => String(l.msg).startsWith('P2.8 Portfolio Risk Governor started'))).to.include({ cycles: 'thread' });

    await service.stop();
    service = undefined;
    expect(await client.get(LEASE), 'the lease is released at stop').to.equal(null);
    expect(lines.map((l) => l.msg)).to.include.members(['lease released', 'stopped']);
    const names = String(await client.client('LIST'));
    expect(names).not.to.match(/name=p28-(worker|http|api):test-worker/);
  });

  it('shows a crash of the thread: logged, /health degraded naming it, then a new thread runs the cycle again', async () => {
    const { logger, lines } = captureLogs();
    service = await startWorkerService(config(), { logger, processMetrics: false, cycleThreadModule: join(__dirname, '..', '..', 'support', 'crashing-cycle-thread.ts') });
    await eventually(() => lines.some((l) => String(l.msg).startsWith('cycle thread crashed')), 20000, 20);
    const crash = lines.find((l) => String(l.msg).startsWith('cycle thread crashed'))!;
    expect(crash.level).to.equal(50);
    expect(JSON.stringify(crash.err)).to.contain('injected crash of the cycle thread');

    let degraded: Record<string, unknown> | undefined;
    await eventually(async () => {
      const { status, body } = await health();
      if (status === 503 && body.status === 'degraded') degraded = body;
      return lines.some((l) => l.msg === 'cycle thread running again');
    }, 20000, 20);
    // Degraded from the crash until the new thread reports itself (the restart delay is 1 s).
    expect(degraded, 'a /health answer between the crash and the restart').to.not.equal(undefined);
    expect(degraded!.reason).to.equal('the cycle thread crashed (injected crash of the cycle thread); restarting it');

    // The new thread takes the lease once the dead one's has expired, and writes budgets again.
    const before = Number(await client.hget('quantum:p28:worker:heartbeat', 'last_success_ts'));
    await eventually(async () => Number(await client.hget('quantum:p28:worker:heartbeat', 'last_success_ts')) > before, 15000, 50);
    await eventually(async () => (await health()).status === 200, 10000, 50);
    expect(lines.filter((l) => String(l.msg).startsWith('cycle thread crashed'))).to.have.length(1);
    // Counted for the alert, beside the log line and /health.
    expect((await get('/metrics')).text).to.match(/^p28_cycle_thread_restarts_total 1$/m);
  });

  it('fails to start, closing what it opened, when the thread cannot load', async () => {
    const { logger } = captureLogs();
    const failed = await startWorkerService(config({ PORT: '0' }), { logger, processMetrics: false, cycleThreadModule: join(__dirname, '..', '..', 'support', 'unloadable-cycle-thread.ts') }).then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failed?.message).to.contain('the cycle thread module cannot load');
    await eventually(async () => !/name=p28-(http|worker):test-worker/.test(String(await client.client('LIST'))), 5000);
  });

  it('runs the cycle in-process with P28_CYCLE_THREAD=0, or when a heat reader is passed in', async () => {
    service = await startWorkerService(config({ P28_CYCLE_THREAD: '0' }), { processMetrics: false });
    expect(service.cycles).to.equal('in-process');
    await service.stop();
    service = await startWorkerService(config(), { processMetrics: false, heatSource: { read: async () => ({ value: 0.65, source: 'live' }) } });
    expect(service.cycles).to.equal('in-process');
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 15000);
  });
});
