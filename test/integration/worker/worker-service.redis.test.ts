import { expect } from 'chai';
import { LocalRedisServer } from '../../support/local-redis-server';
import type { RedisClient } from '../../../lib/redis/client';
import type { HeatReading } from '../../../lib/worker/sources/heat-source';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { connectedClient, eventually, untilPong } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';
import { metricValue } from '../../support/metric-values';

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

  const liveHeat = { read: async (): Promise<HeatReading> => ({ value: 0.65, source: 'live' }) };
  const start = (env: Record<string, string> = {}, heatSource = liveHeat) =>
    startWorkerService(
      workerConfig(server, { PORT: '0', BUDGET_COMPUTE_INTERVAL_SEC: '0.1', BUDGET_HASH_TTL_SEC: '10', LEASE_TTL_MS: '1000', ...env }),
      { heatSource, processMetrics: false },
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
    await untilPong(client);
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

  describe('one truth for the mode', () => {
    it('follows an override within a cycle without a restart, and a restart clears it, audited, back to P28_MODE', async function () {
      this.timeout(20000);
      await seed();
      service = await start({ P28_MODE: 'shadow' });
      await eventually(async () => (await client.hget(BUDGET, 'mode')) === 'shadow');
      await client.hset('quantum:position:snapshot:ETHUSDT', { position_amt: '1', entry_price: '3000' });

      await client.set('quantum:p28:mode', 'enforce');
      const setAt = Date.now();
      const hashesSay = async (mode: string) => {
        const keys = ['quantum:portfolio:budget:BTCUSDT', 'quantum:portfolio:budget:ETHUSDT'];
        return (await Promise.all(keys.map((k) => client.hget(k, 'mode')))).every((m) => m === mode);
      };
      await eventually(() => hashesSay('enforce'), 5000, 10);
      // Within one interval (0.1 s) plus a cycle, with room for a loaded machine.
      expect(Date.now() - setAt).to.be.below(2000);
      expect((await health(service.port)).body).to.include({ mode: 'enforce', mode_source: 'override' });
      expect(await metricValue(service.metrics.registry, 'p28_mode_source', { source: 'override' })).to.equal(1);

      await service.stop();
      service = await start({ P28_MODE: 'shadow' });
      await eventually(async () => service!.worker.lastCycle?.result === 'ok', 5000, 10);
      expect(await client.exists('quantum:p28:mode')).to.equal(0);
      await eventually(() => hashesSay('shadow'), 5000, 10);
      const { status, body } = await health(service.port);
      expect(status).to.equal(200);
      expect(body).to.include({ mode: 'shadow', mode_source: 'env' });
      expect(await metricValue(service.metrics.registry, 'p28_mode_source', { source: 'env' })).to.equal(1);
      const audit = (await client.xrange('quantum:stream:p28.mode', '-', '+')).map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]]] : []))));
      expect(audit.find((e) => e.event === 'cleared_at_start')).to.include({ from: 'enforce', to: 'shadow', source: 'env', override: 'enforce' });
    });
  });

  describe('heartbeat and degraded health', () => {
    let release: (() => void) | undefined;
    afterEach(() => release?.());

    it('a stalled leader makes /health of both replicas degraded within HEALTH_MAX_BUDGET_AGE_SEC', async function () {
      this.timeout(30000);
      await seed();
      let stalled = false;
      const stallable = {
        read: (): Promise<HeatReading> => {
          if (!stalled) return liveHeat.read();
          return new Promise((resolve) => {
            release = () => resolve({ value: 0.65, source: 'live' });
          });
        },
      };
      // A long lease: the stand-by must not take over, so only the heartbeat can tell.
      const env = { LEASE_TTL_MS: '60000', HEALTH_MAX_BUDGET_AGE_SEC: '2', BUDGET_COMPUTE_INTERVAL_SEC: '0.2' };
      service = await start({ ...env, P28_INSTANCE_ID: 'leader' }, stallable);
      await eventually(async () => service!.worker.lastCycle?.result === 'ok', 5000, 10);
      const standby = await start({ ...env, P28_INSTANCE_ID: 'standby' });
      try {
        await eventually(async () => standby.worker.lastCycle?.result === 'standby', 5000, 10);
        const beat = await client.hgetall('quantum:p28:worker:heartbeat');
        expect(beat).to.include({ leader: 'leader', symbols_written: '1' });
        expect(Number(beat.last_success_ts)).to.be.closeTo(Date.now(), 2000);
        for (const replica of [service, standby]) {
          expect((await health(replica.port)).body).to.include({ status: 'healthy' });
          expect(await metricValue(replica.metrics.registry, 'p28_budgets_written_timestamp_seconds')).to.be.closeTo(Date.now() / 1000, 2);
        }

        stalled = true;
        const stalledAt = Date.now();
        for (const replica of [service, standby]) {
          await eventually(async () => (await health(replica.port)).status === 503, 10000, 50);
        }
        // Degraded only once the budgets are older than 2 s; reported within a cycle or two after.
        expect(Date.now() - stalledAt).to.be.within(1500, 2000 + 3000);
        for (const replica of [service, standby]) {
          const { body } = await health(replica.port);
          expect(body).to.include({ status: 'degraded', redis: 'connected' });
          expect(body.reason).to.match(/no replica has written budgets for [\d.]+ s/);
          expect(body.budgets_age_sec).to.be.greaterThan(2);
        }
        expect((await health(service.port)).body.role).to.equal('leader');
        expect((await health(standby.port)).body.role).to.equal('standby');
      } finally {
        // Unstall before releasing, or the leader's next cycle would hang again and stop() wait for it.
        stalled = false;
        release?.();
        await standby.stop();
      }
    });

    it('is degraded, naming the cause, when this replica\'s last three cycles failed (NOPERM)', async function () {
      this.timeout(20000);
      await seed();
      await client.call('ACL', 'SETUSER', 'p28', 'on', '>secret-pw', '~*', '&*', '+@all', '-@scripting');
      service = await startWorkerService(
        workerConfig(server, { PORT: '0', BUDGET_COMPUTE_INTERVAL_SEC: '0.1', BUDGET_HASH_TTL_SEC: '10', REDIS_URL: `redis://p28:secret-pw@127.0.0.1:${server.port}` }),
        { heatSource: liveHeat, processMetrics: false },
      );
      const port = service.port;
      await eventually(async () => (await health(port)).status === 503, 10000, 50);
      const { body } = await health(port);
      expect(body).to.include({ status: 'degraded', redis: 'connected' });
      expect(body.reason).to.match(/^last \d+ cycles failed \(NOPERM\)/);
      expect(JSON.stringify(body)).not.to.contain('secret-pw');
    });
  });
});
