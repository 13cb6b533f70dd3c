import { expect } from 'chai';
import { LocalRedisServer } from '../support/local-redis-server';
import type { RedisClient } from '../../lib/redis/client';
import { startWorkerService, type WorkerServiceHandle } from '../../lib/worker/worker-service';
import { connectedClient, eventually } from '../support/redis';
import { metricValue, seedGuideScenario, workerConfig } from '../support/seed';

const BUDGET = 'quantum:portfolio:budget:BTCUSDT';

describe('startWorkerService', () => {
  let server: LocalRedisServer;
  let client: RedisClient;
  let service: WorkerServiceHandle | undefined;

  beforeEach(async () => {
    server = await LocalRedisServer.start();
    client = await connectedClient(server);
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    client.disconnect();
    await server.stop();
  });

  const start = () =>
    startWorkerService(
      workerConfig(server, { PORT: '0', BUDGET_COMPUTE_INTERVAL_SEC: '0.1', BUDGET_HASH_TTL_SEC: '10', LEASE_TTL_MS: '1000' }),
      { heatSource: { read: async () => ({ value: 0.65, source: 'live' }) }, processMetrics: false },
    );
  const seed = () => seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
  const health = async (port: number) => {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('computes and writes budgets on its own loop and serves /health and /metrics on the bound port', async () => {
    await seed();
    service = await start();
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348');
    const { status, body } = await health(service.port);
    expect(status).to.equal(200);
    expect(body).to.include({ role: 'leader', redis: 'connected', mode: 'shadow' });
    const metrics = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
    expect(metrics).to.match(/^p28_budget_value_usd\{symbol="BTCUSDT"\} 1348$/m);
  });

  it('counts write failures and answers 503 while Redis is gone, then resumes writing without a restart', async function () {
    this.timeout(30000);
    await seed();
    service = await start();
    const { metrics, port } = service;
    await eventually(async () => (await client.exists(BUDGET)) === 1);

    await server.kill();
    await eventually(async () => (await metricValue(metrics.registry, 'p28_redis_write_fail_total')) >= 2, 10000);
    expect(await metricValue(metrics.registry, 'p28_cycles_total', { result: 'failed' })).to.be.at.least(2);
    const down = await health(port);
    expect(down.status).to.equal(503);
    expect(down.body).to.include({ status: 'unhealthy', redis: 'disconnected' });

    // A fresh, empty server on the same port: the worker reconnects by itself.
    await server.restart();
    await eventually(async () => {
      try {
        return (await client.ping()) === 'PONG';
      } catch {
        return false;
      }
    }, 10000);
    await seed();
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 10000);
    expect((await health(port)).status).to.equal(200);
    expect(service.worker.lastCycle?.result).to.equal('ok');
  });

  it('stop() releases the lease, closes the HTTP server and the Redis connection', async () => {
    await seed();
    service = await start();
    const { port, redis } = service;
    await eventually(async () => (await client.exists('quantum:p28:worker:lease')) === 1);
    await service.stop();
    expect(await client.exists('quantum:p28:worker:lease')).to.equal(0);
    expect(redis.status).to.equal('end');
    let refused = false;
    await fetch(`http://127.0.0.1:${port}/health`).catch(() => (refused = true));
    expect(refused).to.equal(true);
  });
});
