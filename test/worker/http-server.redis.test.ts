import { expect } from 'chai';
import sinon from 'sinon';
import { BudgetWorker } from '../../lib/worker/budget-worker';
import { startHttpServer, type HttpServerHandle } from '../../lib/worker/http-server';
import { LocalRedisServer } from '../support/local-redis-server';
import type { RedisClient } from '../../lib/redis/client';
import { connectedClient, eventually, useRedisServer } from '../support/redis';
import { seedGuideScenario, workerConfig } from '../support/seed';

const NOW = Date.UTC(2026, 0, 27, 22, 34, 3);

describe('HTTP endpoints', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  let worker: BudgetWorker;
  let http: HttpServerHandle;
  let clock: sinon.SinonFakeTimers;
  const url = (path: string) => `http://127.0.0.1:${http.port}${path}`;

  beforeEach(async () => {
    clock = sinon.useFakeTimers({ now: NOW, toFake: ['Date'] });
    client = await connectedClient(redis.server);
    await client.flushall();
    worker = new BudgetWorker({
      config: workerConfig(redis.server, { P28_MODE: 'enforce' }),
      redis: client,
      heatSource: { read: async () => ({ value: 0.65, source: 'live' }) },
    });
    http = await startHttpServer({ host: '127.0.0.1', port: 0, registry: worker.metrics.registry, redis: client, worker, instanceId: 'test-worker', maxBudgetAgeSec: 15 });
  });
  afterEach(async () => {
    await http.close();
    await worker.stop();
    client.disconnect();
    clock.restore();
  });

  it('GET /health answers 200 with mode, Redis, role and the age of the last successful cycle', async () => {
    const before = await fetch(url('/health'));
    expect(before.status).to.equal(200);
    expect(await before.json()).to.deep.equal({
      status: 'healthy',
      service: 'p2.8-portfolio-risk-governor',
      mode: 'enforce',
      mode_source: 'env',
      redis: 'connected',
      role: 'standby',
      budgets_age_sec: null,
      last_success_age_sec: null,
      last_cycle_result: null,
      instance: 'test-worker',
    });

    await seedGuideScenario(client, { timestampSec: NOW / 1000 });
    const report = await worker.runOnce();
    clock.tick(2500);
    const after = await fetch(url('/health'));
    expect(after.headers.get('content-type')).to.match(/^application\/json/);
    const body = (await after.json()) as { last_success_age_sec: number; budgets_age_sec: number };
    expect(body).to.include({ status: 'healthy', role: 'leader', last_cycle_result: 'ok', redis: 'connected', mode_source: 'env' });
    expect(body.budgets_age_sec).to.be.closeTo(2.5 - report.durationMs / 1000, 0.11);
    expect(body.last_success_age_sec).to.be.closeTo(2.5 - report.durationMs / 1000, 0.11);
  });

  it('GET /metrics serves the worker registry in the Prometheus text format', async () => {
    const res = await fetch(url('/metrics'));
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal(worker.metrics.registry.contentType);
    const text = await res.text();
    expect(text).to.contain('p28_enforce_mode 1');
    expect(text).to.contain('p28_redis_write_fail_total 0');
  });

  for (const [method, path] of [['GET', '/'], ['GET', '/healthz'], ['POST', '/health'], ['GET', '/metrics/x']] as const) {
    it(`answers 404 to ${method} ${path}`, async () => {
      expect((await fetch(url(path), { method })).status).to.equal(404);
    });
  }

  it('GET /health answers 503 with redis disconnected while Redis is down, and 200 again when it is back', async () => {
    const own = await LocalRedisServer.start();
    const ownClient = await connectedClient(own);
    const ownHttp = await startHttpServer({ host: '127.0.0.1', port: 0, registry: worker.metrics.registry, redis: ownClient, worker, instanceId: 'x', maxBudgetAgeSec: 15 });
    try {
      await own.kill();
      const res = await fetch(`http://127.0.0.1:${ownHttp.port}/health`);
      expect(res.status).to.equal(503);
      expect(await res.json()).to.include({ status: 'unhealthy', redis: 'disconnected' });
      await own.restart();
      await eventually(async () => (await fetch(`http://127.0.0.1:${ownHttp.port}/health`)).status === 200, 10000, 100);
    } finally {
      await ownHttp.close();
      ownClient.disconnect();
      await own.stop();
    }
  });

  it('GET /health answers 503 when Redis is connected but does not answer PING', async () => {
    const own = await LocalRedisServer.start();
    const ownClient = await connectedClient(own);
    const ownHttp = await startHttpServer({ host: '127.0.0.1', port: 0, registry: worker.metrics.registry, redis: ownClient, worker, instanceId: 'x', maxBudgetAgeSec: 15, redisPingTimeoutMs: 100 });
    try {
      own.pause();
      const res = await fetch(`http://127.0.0.1:${ownHttp.port}/health`);
      expect(res.status).to.equal(503);
      expect(await res.json()).to.include({ redis: 'disconnected' });
    } finally {
      own.resume();
      await ownHttp.close();
      ownClient.disconnect();
      await own.stop();
    }
  });
});
