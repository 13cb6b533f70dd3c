import { expect } from 'chai';
import { loadConfig } from '../../../lib/config';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import type { RedisClient } from '../../../lib/redis/client';
import { freePort, LocalRedisServer } from '../../support/local-redis-server';
import { captureLogs, type CapturedLog } from '../../support/log-capture';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';

const heat: HeatReader = { read: async () => ({ value: 0.65, source: 'live' }) };
const WARN = 40;
const warnings = (lines: CapturedLog[], msg: RegExp) => lines.filter((l) => l.level >= WARN && msg.test(l.msg));

describe('repeated errors are logged once per change of cause, with a count', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let admin: RedisClient;
  let client: RedisClient;

  before(async () => {
    admin = await connectedClient(redis.server);
    client = await connectedClient(redis.server);
  });
  beforeEach(async () => {
    await admin.config('SET', 'maxmemory', '0');
    await admin.flushall();
  });
  after(() => {
    admin.disconnect();
    client.disconnect();
  });

  it('OOM on 6 cycles: one warning naming OOM, then one info line with the count once cycles succeed', async () => {
    await seedGuideScenario(admin, { timestampSec: Math.floor(Date.now() / 1000) });
    const { logger, lines } = captureLogs();
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: client, heatSource: heat, logger });
    await worker.runOnce();
    await admin.config('SET', 'maxmemory', '1');
    for (let i = 0; i < 6; i++) expect(await worker.runOnce()).to.include({ result: 'failed', cause: 'OOM' });
    await admin.config('SET', 'maxmemory', '0');
    expect(await worker.runOnce()).to.include({ result: 'ok' });
    expect(warnings(lines, /cycle failed/).map((l) => l.cause)).to.deep.equal(['OOM']);
    expect(lines.filter((l) => l.msg === 'cycles succeed again').map((l) => [l.cause, l.count])).to.deep.equal([['OOM', 6]]);
    await worker.lease.release();
  });

  it('a portfolio timestamp an hour ahead (clock skew) on 5 cycles: one warning', async () => {
    await seedGuideScenario(admin, { timestampSec: Math.floor(Date.now() / 1000) + 3600 });
    const { logger, lines } = captureLogs();
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: client, heatSource: heat, logger });
    for (let i = 0; i < 5; i++) {
      expect(await worker.runOnce()).to.include({ result: 'skipped' });
      await new Promise((r) => setTimeout(r, 300)); // the skew in seconds changes between cycles
    }
    expect(warnings(lines, /portfolio state/)).to.have.length(1);
    await worker.lease.release();
  });

  it('connection errors while Redis is down: one warning however many retries, then one line with the count when it is back', async () => {
    const port = await freePort();
    const { logger, lines } = captureLogs();
    let service: WorkerServiceHandle | undefined;
    let server: LocalRedisServer | undefined;
    try {
      service = await startWorkerService(loadConfig({ REDIS_URL: `redis://127.0.0.1:${port}`, PORT: '0', LOG_LEVEL: 'silent', BUDGET_COMPUTE_INTERVAL_SEC: '0.2' }), { logger, heatSource: heat, processMetrics: false });
      await new Promise((r) => setTimeout(r, 2000));
      server = await LocalRedisServer.start({ port });
      await eventually(() => lines.some((l) => l.msg === 'redis connected again'), 10000, 50);
    } finally {
      await service?.stop();
      await server?.stop();
    }
    const connection = warnings(lines, /redis connection error/);
    expect(connection.map((l) => l.cause)).to.deep.equal(['CONNECTION']);
    const back = lines.find((l) => l.msg === 'redis connected again')!;
    expect(back.count as number).to.be.at.least(3);
    // Failed cycles while Redis was down: counted under one cause, logged once.
    expect(warnings(lines, /cycle failed/)).to.have.length(1);
  });

  it('Sentinel retries while no Sentinel answers: one warning', async () => {
    const ports = [await freePort(), await freePort()];
    const { logger, lines } = captureLogs();
    const config = loadConfig({ REDIS_SENTINELS: ports.map((p) => `127.0.0.1:${p}`).join(','), PORT: '0', LOG_LEVEL: 'silent', BUDGET_COMPUTE_INTERVAL_SEC: '0.2' });
    const service = await startWorkerService(config, { logger, heatSource: heat, processMetrics: false });
    try {
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await service.stop();
    }
    const connection = warnings(lines, /redis connection error/);
    expect(connection.map((l) => l.cause)).to.deep.equal(['SENTINEL']);
    expect(warnings(lines, /cycle failed/)).to.have.length(1);
  });
});
