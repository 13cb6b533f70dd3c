import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createRedisClient, waitForReady, type RedisClient } from '../../../lib/redis/client';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import { judgeHealth } from '../../../lib/worker/health';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { BudgetGate } from '../../../plugin/budget-gate';
import { budgetFields } from '../../support/gate-fixtures';
import { connectedClient, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';

/** The worker's minimal ACL, as docs/operations.md gives it (Redis 7 key selectors). */
const WORKER_ACL = [
  'resetkeys', 'resetchannels', '-@all',
  '+@connection', '+info',
  '+get', '+getdel', '+set', '+del', '+pexpire', '+expire', '+hgetall', '+hset', '+hdel', '+scan', '+xadd', '+xrevrange', '+multi', '+exec',
  '+evalsha', '+eval', '+script|load', '+hget', '+time',
  '%R~quantum:state:*', '%R~quantum:marketstate:*', '%R~quantum:position:snapshot:*', '%R~quantum:cluster:stress:*',
  '~quantum:portfolio:budget:*', '~quantum:stream:budget.violation', '~quantum:stream:p28.mode', '~quantum:p28:*',
];
/**
 * The gate's minimal ACL: the decision and release scripts on the budget hashes only, which they
 * read and, for reservations, write. A gate with reservations off needs only read access.
 */
const GATE_ACL = ['resetkeys', 'resetchannels', '-@all', '+@connection', '+info', '+evalsha', '+eval', '+hmget', '+hget', '+hset', '+hdel', '+time', '~quantum:portfolio:budget:*'];
// EVAL and EVALSHA declare their keys read-write, so a read-only user is made by its commands: no write command at all.
const READ_ONLY_GATE_ACL = ['resetkeys', 'resetchannels', '-@all', '+@connection', '+info', '+evalsha', '+eval', '+hmget', '+time', '~quantum:portfolio:budget:*'];

const heat: HeatReader = { read: async () => ({ value: 0.65, source: 'live' }) };

describe('ACL users, and the cause of failing cycles', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let admin: RedisClient;
  const clients: RedisClient[] = [];

  async function clientAs(user: string, profile: 'worker' | 'gate' = 'worker'): Promise<RedisClient> {
    const client = createRedisClient({ url: `redis://${user}:${user}-pw@127.0.0.1:${redis.server.port}`, profile });
    client.on('error', () => undefined);
    clients.push(client);
    await waitForReady(client, 5000);
    return client;
  }

  before(async () => {
    admin = await connectedClient(redis.server);
    await admin.call('acl', 'setuser', 'p28-worker', 'on', '>p28-worker-pw', ...WORKER_ACL);
    await admin.call('acl', 'setuser', 'p28-gate', 'on', '>p28-gate-pw', ...GATE_ACL);
    await admin.call('acl', 'setuser', 'p28-gate-ro', 'on', '>p28-gate-ro-pw', ...READ_ONLY_GATE_ACL);
    await admin.call('acl', 'setuser', 'reader', 'on', '>reader-pw', '-@all', '+@connection', '+info', '+@read', '+evalsha', '+eval', '~*');
  });
  beforeEach(async () => {
    await admin.config('SET', 'maxmemory', '0');
    await admin.flushall();
    await seedGuideScenario(admin, { timestampSec: Math.floor(Date.now() / 1000) });
  });
  after(() => {
    for (const c of clients) c.disconnect();
    admin.disconnect();
  });

  it('runs the worker and the gate under their minimal ACL users; the gate user touches budget hashes only, and a read-only one works with reservations off', async () => {
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: await clientAs('p28-worker'), heatSource: heat });
    for (let i = 0; i < 3; i++) expect(await worker.runOnce()).to.include({ result: 'ok' });
    expect(await admin.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');
    expect(await worker.lease.release()).to.equal(true);

    await admin.hset('quantum:portfolio:budget:ETHUSDT', budgetFields());
    const gateClient = await clientAs('p28-gate', 'gate');
    const gate = new BudgetGate({ redis: gateClient, registry: new Registry() });
    const decision = await gate.evaluate({ planId: 'p1', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 10 });
    expect(decision, JSON.stringify(decision)).to.include({ failOpen: false, reason: 'within_budget' });
    expect(await admin.hexists('quantum:portfolio:budget:ETHUSDT', 'reservations')).to.equal(1);
    expect(await gate.release('p1', 'ETHUSDT')).to.equal(true);
    expect(await gate.evaluate({ planId: 'p1b', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.001 })).to.include({ failOpen: false });
    await gate.close();
    for (const write of [() => gateClient.set('quantum:p28:mode', 'shadow'), () => gateClient.hset('quantum:state:portfolio', 'equity_usd', '1')]) {
      expect(String(await write().catch((e: Error) => e.message))).to.match(/^NOPERM/);
    }
    const other = await gateClient.hgetall('quantum:state:portfolio').catch((e: Error) => e.message);
    expect(String(other)).to.match(/^NOPERM/);

    // Read-only: with reservations off the scripts write nothing; a reserving gate is refused, and fails open.
    const readOnlyClient = await clientAs('p28-gate-ro', 'gate');
    const readOnly = new BudgetGate({ redis: readOnlyClient, registry: new Registry(), reservationTtlMs: 0 });
    const readDecision = await readOnly.evaluate({ planId: 'p3', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 10 });
    expect(readDecision, JSON.stringify(readDecision)).to.include({ failOpen: false, reason: 'within_budget' });
    await readOnly.close();
    const denied = await readOnlyClient.hset('quantum:portfolio:budget:BTCUSDT', 'budget_usd', '1e9').catch((e: Error) => e.message);
    expect(String(denied)).to.match(/^NOPERM/);
    const reserving = new BudgetGate({ redis: readOnlyClient, registry: new Registry() });
    expect(await reserving.evaluate({ planId: 'p4', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 10 })).to.include({ allow: true, failOpen: true, reason: 'redis_unavailable' });
    await reserving.close();
    // A read the ACL denies (here: another key prefix) is a counted fail-open, never an exception.
    const denied2 = new BudgetGate({ redis: gateClient, registry: new Registry(), keyPrefix: 'other' });
    expect(await denied2.evaluate({ planId: 'p2', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.001 })).to.include({ allow: true, failOpen: true, reason: 'redis_unavailable' });
    await denied2.close();
  });

  it('names NOPERM as the cause when a user without write rights runs every cycle', async () => {
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: await clientAs('reader'), heatSource: heat });
    for (let i = 0; i < 3; i++) expect(await worker.runOnce()).to.include({ result: 'failed', cause: 'NOPERM' });
    expect(worker.healthFacts).to.include({ failedInARow: 3, lastCause: 'NOPERM' });
    // Redis answers the denial inside the lease script as a generic "ERR ... script": /health still names NOPERM.
    const health = judgeHealth({ worker: worker.healthFacts, redisConnected: true, maxBudgetAgeSec: 3600, nowMs: Date.now(), instanceId: 'w' });
    expect(health.body).to.include({ status: 'degraded' });
    expect(health.body.reason).to.match(/^last 3 cycles failed \(NOPERM\)/);
  });

  it('names OOM as the cause when Redis is out of memory, and clears it once a cycle succeeds', async () => {
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: await clientAs('p28-worker'), heatSource: heat });
    expect(await worker.runOnce()).to.include({ result: 'ok' });
    await admin.config('SET', 'maxmemory', '1');
    for (let i = 0; i < 3; i++) expect(await worker.runOnce()).to.include({ result: 'failed', cause: 'OOM' });
    expect(worker.healthFacts).to.include({ failedInARow: 3, lastCause: 'OOM' });
    await admin.config('SET', 'maxmemory', '0');
    expect(await worker.runOnce()).to.include({ result: 'ok' });
    expect(worker.healthFacts).to.include({ failedInARow: 0 });
    await worker.lease.release();
  });
});
