import { expect } from 'chai';
import sinon from 'sinon';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { LeaderLease } from '../../../lib/worker/leader-lease';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';
import { metricValue } from '../../support/metric-values';
import { captureLogs } from '../../support/log-capture';

const KEY = 'quantum:p28:worker:lease';

describe('LeaderLease', () => {
  const redis = useRedisServer();
  let a: RedisClient;
  let b: RedisClient;

  before(async () => {
    a = await connectedClient(redis.server);
    b = await connectedClient(redis.server);
  });
  after(() => {
    a.disconnect();
    b.disconnect();
  });
  beforeEach(async () => {
    await a.flushall();
  });

  it('lets exactly one of two replicas hold the lease', async () => {
    const first = new LeaderLease(a, { key: KEY, instanceId: 'w', ttlMs: 5000 });
    const second = new LeaderLease(b, { key: KEY, instanceId: 'w', ttlMs: 5000 });
    expect(await first.hold()).to.equal(true);
    expect(await second.hold()).to.equal(false);
    expect(await first.hold()).to.equal(true);
    expect(await second.hold()).to.equal(false);
    // Same instance id, still two holders told apart by the random part of the token.
    expect(first.token).to.not.equal(second.token);
    expect(await a.get(KEY)).to.equal(`${first.token}/${first.fence!.epoch}`);
  });

  it('renews the lease TTL on every hold by the holder', async () => {
    const lease = new LeaderLease(a, { key: KEY, instanceId: 'w', ttlMs: 5000 });
    await lease.hold();
    await a.pexpire(KEY, 100);
    await lease.hold();
    expect(await a.pttl(KEY)).to.be.greaterThan(1000);
  });

  it('steps down instead of renewing a lease that another replica took', async () => {
    const lease = new LeaderLease(a, { key: KEY, instanceId: 'w', ttlMs: 5000 });
    await lease.hold();
    await a.set(KEY, 'someone-else', 'PX', 5000);
    expect(await lease.hold()).to.equal(false);
    expect(lease.isLeader).to.equal(false);
    expect(await a.get(KEY)).to.equal('someone-else');
  });

  it('releases only its own lease', async () => {
    const lease = new LeaderLease(a, { key: KEY, instanceId: 'w', ttlMs: 5000 });
    const other = new LeaderLease(b, { key: KEY, instanceId: 'w', ttlMs: 5000 });
    await lease.hold();
    expect(await other.release()).to.equal(false);
    expect(await a.get(KEY)).to.equal(`${lease.token}/${lease.fence!.epoch}`);
    expect(await lease.release()).to.equal(true);
    expect(await a.exists(KEY)).to.equal(0);
  });

  it('lets a stand-by take over once the holder stops renewing for one TTL', async () => {
    const leader = new LeaderLease(a, { key: KEY, instanceId: 'leader', ttlMs: 1000 });
    const standby = new LeaderLease(b, { key: KEY, instanceId: 'standby', ttlMs: 1000 });
    await leader.hold();
    expect(await standby.hold()).to.equal(false);
    await eventually(() => standby.hold(), 5000, 50);
    expect(await a.get(KEY)).to.equal(`${standby.token}/${standby.fence!.epoch}`);
  });

  it('keeps leading after a CLIENT PAUSE longer than its TTL, when Redis applied its timed-out renewals later', async function () {
    this.timeout(20000);
    const admin = await connectedClient(redis.server, 'worker', 5000);
    const holder = await connectedClient(redis.server, 'worker', 200);
    try {
      // The pause outlasts the TTL but stays under the client's silence probe, which would drop the
      // connection and with it the queued renewals (REDIS_DEFAULTS.workerSilenceProbeMs).
      const lease = new LeaderLease(holder, { key: KEY, instanceId: 'w', ttlMs: 600 });
      expect(await lease.hold()).to.equal(true);
      await admin.call('client', 'pause', '1500', 'ALL');
      const pausedUntil = Date.now() + 1500;
      // Renewals time out on the holder's side, but Redis queues and applies them after the pause.
      let failedHolds = 0;
      let steppedDown = false;
      while (Date.now() < pausedUntil - 300) {
        await lease.hold().catch(() => failedHolds++);
        steppedDown ||= !lease.isLeader;
      }
      expect(failedHolds).to.be.greaterThan(3);
      expect(steppedDown, 'stepped down once the lease was unconfirmed for its TTL').to.equal(true);
      await eventually(async () => (await admin.ping().catch(() => '')) === 'PONG', 5000);
      // Its own token, with the epoch of whichever late renewal or take-over Redis applied last.
      expect(await admin.get(KEY)).to.match(new RegExp(`^${lease.token}/\\d+$`));
      // Before the fix, SET NX failed on its own token here until the late renewals' TTL ran out.
      const standbyHolds: boolean[] = [];
      for (let i = 0; i < 5; i++) standbyHolds.push(await lease.hold());
      expect(standbyHolds).to.deep.equal([true, true, true, true, true]);
      expect(lease.isLeader).to.equal(true);
    } finally {
      admin.disconnect();
      holder.disconnect();
    }
  });

  it('a stand-by whose take-over of a free lease was answered late logs "lease acquired", not a stall', async function () {
    this.timeout(20000);
    const admin = await connectedClient(redis.server, 'worker', 5000);
    const standby = await connectedClient(redis.server, 'worker', 200);
    const { logger, lines } = captureLogs();
    try {
      const lease = new LeaderLease(standby, { key: KEY, instanceId: 'standby', ttlMs: 5000, logger });
      await admin.call('client', 'pause', '600', 'ALL');
      // Times out on the stand-by's side; Redis applies the take-over after the pause.
      expect(await lease.hold().then(() => 'answered', () => 'timed out')).to.equal('timed out');
      await eventually(async () => (await admin.get(KEY))?.startsWith(`${lease.token}/`) === true, 5000);
      expect(await lease.hold()).to.equal(true);
      const messages = lines.map((l) => l.msg);
      expect(messages).to.include('leader: lease acquired');
      expect(messages.join(' ')).to.not.contain('stall');
    } finally {
      admin.disconnect();
      standby.disconnect();
    }
  });

  it('stops believing it leads once the lease was not confirmed within its TTL', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['performance'] });
    try {
      const lease = new LeaderLease(a, { key: KEY, instanceId: 'w', ttlMs: 1000 });
      await lease.hold();
      clock.tick(999);
      expect(lease.isLeader).to.equal(true);
      clock.tick(2);
      expect(lease.isLeader).to.equal(false);
    } finally {
      clock.restore();
    }
  });
});

describe('BudgetWorker replicas', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  const replicaClients: RedisClient[] = [];

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => {
    client.disconnect();
    for (const c of replicaClients) c.disconnect();
  });

  const heat = (value: number): HeatReader => ({ read: async () => ({ value, source: 'live' }) });
  async function replica(name: string, heatValue: number): Promise<BudgetWorker> {
    const own = await connectedClient(redis.server);
    replicaClients.push(own);
    return new BudgetWorker({
      config: workerConfig(redis.server, { P28_INSTANCE_ID: name, LEASE_TTL_MS: '1000' }),
      redis: own,
      heatSource: heat(heatValue),
    });
  }

  it('only the lease holder writes; the other takes over when the leader stops or dies', async () => {
    await client.flushall();
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    // Different heat per replica tells their budgets apart: 0.65 -> 1348, 0.15 -> 1748.
    const a = await replica('replica-a', 0.65);
    const b = await replica('replica-b', 0.15);

    for (let i = 0; i < 3; i++) {
      const ra = await a.runOnce();
      const rb = await b.runOnce();
      expect([ra.role, ra.written]).to.deep.equal(['leader', ['BTCUSDT']]);
      expect([rb.role, rb.result, rb.written]).to.deep.equal(['standby', 'standby', []]);
      expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');
    }
    expect(await metricValue(a.metrics.registry, 'p28_is_leader')).to.equal(1);
    expect(await metricValue(b.metrics.registry, 'p28_is_leader')).to.equal(0);

    // A graceful stop releases the lease: the stand-by takes over on its next cycle.
    await a.stop();
    const takeover = await b.runOnce();
    expect(takeover.role).to.equal('leader');
    expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1748');

    // b now dies without releasing: a new replica stands by until the lease expires, then leads.
    const c = await replica('replica-c', 0.65);
    expect((await c.runOnce()).role).to.equal('standby');
    await eventually(async () => (await c.runOnce()).role === 'leader', 5000, 50);
    expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');

    // The old leader comes back from its stall: it finds the lease taken and writes nothing.
    await client.del('quantum:portfolio:budget:BTCUSDT');
    const back = await b.runOnce();
    expect([back.role, back.written]).to.deep.equal(['standby', []]);
    expect(await client.exists('quantum:portfolio:budget:BTCUSDT')).to.equal(0);
    await c.stop();
  });
});
