import { expect } from 'chai';
import Redis from 'ioredis';
import sinon from 'sinon';
import { Registry } from 'prom-client';
import { BudgetGate } from '../../../plugin/budget-gate';
import { DECISION_LOG_DEFAULTS, DecisionLog } from '../../../plugin/decision-log';
import { createRedisClient, waitForReady, type RedisClient } from '../../../lib/redis/client';
import { RedisKeys } from '../../../lib/redis/keys';
import { silentLogger } from '../../../lib/logger';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { DECISION_LOG_FIELDS, DecisionLogEntry, readLoggedDecision, unpackDecisionLogEntry } from '../../../types/decision-log-entry';
import type { GateDecision } from '../../../types/permit';
import { LocalRedisServer } from '../../support/local-redis-server';
import { LocalRedisCluster } from '../../support/redis-cluster';
import { budgetFields, DEFAULT_POLICY, plan } from '../../support/gate-fixtures';
import { connectedClient, eventually, untilPong, useRedisServer } from '../../support/redis';
import { metricValue, workerConfig } from '../../support/seed';

const keys = new RedisKeys();
const STREAM = keys.decisionLogStream;

type Entry = [id: string, fields: string[]];

/** The values of an entry by name (its one field `d`, unpacked). */
const asObject = (flat: readonly string[]): Record<string, string> => {
  expect(flat[0]).to.equal('d');
  return unpackDecisionLogEntry(flat[1]!)!;
};

async function entries(client: RedisClient): Promise<Entry[]> {
  return (await client.xrange(STREAM, '-', '+')) as Entry[];
}

describe('decision log (real Redis)', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let client: RedisClient;
  const gates: BudgetGate[] = [];

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());
  afterEach(async () => {
    for (const gate of gates.splice(0)) await gate.close();
  });

  const newGate = (options: Partial<ConstructorParameters<typeof BudgetGate>[0]> = {}): BudgetGate => {
    const gate = new BudgetGate({ redisUrl: redis.server.url, instanceId: 'gate-a', ...options });
    gates.push(gate);
    return gate;
  };

  it('appends one entry per decision of the plugin with the plan, the decision and the hash inputs it used', async () => {
    const nowMs = Date.now();
    await client.hset(keys.budget('ETHUSDT'), budgetFields({}, nowMs));
    const gate = newGate({ now: () => nowMs });
    await gate.ready();
    const within = await gate.evaluate(plan({ planId: 'p-within', qty: 0.1 }));
    const over = await gate.evaluate(plan({ planId: 'p-over', qty: 0.5, notionalUsd: 500 }));
    const closing = await gate.evaluate(plan({ planId: 'p-close', action: 'CLOSE' }));
    const missing = await gate.evaluate(plan({ planId: 'p-none', symbol: 'SOLUSDT' }));
    const invalid = await gate.evaluate({ planId: 'p-bad', symbol: 'ETHUSDT', action: 'OPEN', qty: -1 } as never);
    expect([within.reason, over.reason, closing.reason, missing.reason, invalid.reason]).to.deep.equal([
      'within_budget',
      'p28_budget_violation',
      'reduce_only',
      'no_budget_data',
      'invalid_request',
    ]);

    await eventually(async () => (await entries(client)).length === 5);
    const logged = (await entries(client)).map(([, fields]) => fields);
    for (const fields of logged) {
      expect(fields, 'one field, d').to.have.length(2);
      expect(Object.keys(asObject(fields)), 'every value, in order').to.deep.equal([...DECISION_LOG_FIELDS]);
      expect(DecisionLogEntry.safeParse(asObject(fields)).success, JSON.stringify(asObject(fields))).to.equal(true);
    }
    const [w, o, c, m, i] = logged.map(asObject);
    expect(w).to.include({ v: '1', ts: String(nowMs), plan_id: 'p-within', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.1', reason: 'within_budget', allow: '1', would_block: '0', fail_open: '0', mode: 'enforce', source: 'redis', gate: 'gate-a', via: 'node' });
    expect(w).to.include({ budget_usd: '1348', position_notional_usd: '1000', projected_notional_usd: '1100', equity_usd: '100000', portfolio_heat: '0.65', cluster_stress: '0', vol_regime: '0.33', base_risk_pct: '0.02', stress_factor: '0.326', hash_mode: 'enforce', hash_ts: String(Math.floor(nowMs / 1000)), position_amt: '1', position_price: '1000' });
    expect(w).to.include({ stale_after_ms: '60000', violation_window_ms: '30000', max_clock_skew_ms: '5000', force_shadow: '0' });
    expect(o).to.include({ plan_id: 'p-over', reason: 'p28_budget_violation', detail: 'projected_over_budget', allow: '0', would_block: '1', enforced: '1', notional_usd: '500', projected_notional_usd: '1600', reserved_usd: '100' }); // p-within holds 100 USD
    expect(c).to.include({ plan_id: 'p-close', reason: 'reduce_only', source: 'none', hash_ts: '', equity_usd: '' });
    expect(m).to.include({ plan_id: 'p-none', symbol: 'SOLUSDT', reason: 'no_budget_data', fail_open: '1', source: 'redis', hash_ts: '' });
    expect(i).to.include({ plan_id: 'p-bad', symbol: 'ETHUSDT', reason: 'invalid_request', action: '', qty: '' });

    const read = readLoggedDecision('1-0', logged[0]!);
    expect(read?.hash).to.include({ symbol: 'ETHUSDT', budget_usd: '1348', equity_usd: '100000', mode: 'enforce' });
    expect(await metricValue(gate.registry, 'p28_decision_log_written_total')).to.equal(5);
  });

  it('logs the request and the decision as judged, packed after the caller has its answer, even when the caller then changes both', async () => {
    const nowMs = Date.now();
    await client.hset(keys.budget('ETHUSDT'), budgetFields({}, nowMs));
    const gate = newGate({ now: () => nowMs });
    await gate.ready();
    const log = (gate as unknown as { decisionLog: { log: DecisionLog } }).decisionLog.log;
    const req = plan({ planId: 'p-reused', qty: 0.1 });
    const decision = await gate.evaluate(req);
    // The caller has its decision: the entry is taken but not packed yet (that waits for setImmediate).
    expect(log.pending).to.equal(1);
    expect((log as unknown as { queue: string[] }).queue).to.have.length(0);
    Object.assign(req, { planId: 'p-changed', qty: 9 });
    Object.assign(decision, { reason: 'changed', allow: false });
    await eventually(async () => (await entries(client)).length === 1);
    const [entry] = (await entries(client)).map(([, fields]) => asObject(fields));
    expect(entry).to.include({ plan_id: 'p-reused', qty: '0.1', reason: 'within_budget', allow: '1', budget_usd: '1348', equity_usd: '100000' });
  });

  it('sends a due batch after the decisions of the same turn of the event loop, so their reads never queue behind it', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields({}, Date.now()));
    const gate = newGate();
    await gate.ready();
    await gate.evaluate(plan({ planId: 'warm-up' }));
    // The warm-up's batch written and settled: the log is idle, its next batch waits flushDelayMs.
    await eventually(async () => (await metricValue(gate.registry, 'p28_decision_log_written_total')) === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await gate.evaluate(plan({ planId: 'first' }));
    // The log packs 'first' in the next check phase and sets its flush timer: that timer's callback
    // is taken here, to be run by hand in the same turn as another decision.
    const realSetTimeout = global.setTimeout;
    let flush: (() => void) | undefined;
    const stub = sinon.stub(global, 'setTimeout').callsFake(((fn: () => void, ms?: number) => {
      if (flush === undefined && ms === DECISION_LOG_DEFAULTS.flushDelayMs && (new Error().stack ?? '').includes('decision-log.ts')) {
        flush = fn;
        return realSetTimeout(() => undefined, 2 ** 31 - 1);
      }
      return realSetTimeout(fn, ms);
    }) as never);
    try {
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      stub.restore();
    }
    expect(flush, 'the log set its flush timer').to.be.a('function');
    const sent: string[] = [];
    const spy = sinon.spy(Redis.prototype, 'sendCommand');
    try {
      // One turn: the flush falls due, then a decision is asked for.
      flush!();
      const second = gate.evaluate(plan({ planId: 'second' }));
      await second;
      await eventually(async () => (await entries(client)).length === 3);
      for (const call of spy.getCalls()) {
        const command = call.args[0] as { name: string; args: unknown[] };
        if (command.name !== 'evalsha' && command.name !== 'eval') continue;
        const args = command.args.map(String);
        sent.push(args.includes(STREAM) ? 'log batch' : `decision ${args.includes('second') ? 'second' : '?'}`);
      }
    } finally {
      spy.restore();
    }
    expect(sent.slice(0, 2)).to.deep.equal(['decision second', 'log batch']);
  });

  it('writes a batch that fell due right after the next decision is answered, when the next one is furthest away', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields({}, Date.now()));
    const gate = newGate();
    await gate.ready();
    const log = (gate as unknown as { decisionLog: { log: DecisionLog } }).decisionLog.log;
    // Each batch the log writes, with what this process was doing when it was sent.
    const writes: Array<{ inFlight: number; afterAnswer: boolean }> = [];
    let inFlight = 0;
    let answered = false;
    // A batch waits as long as it takes for the next decision: on a loaded machine a 4 ms timer can
    // run late, and a batch sent by the fallback would say nothing here.
    (log as unknown as { afterDecisionWaitMs: number }).afterDecisionWaitMs = 60000;
    const original = (log as unknown as { writeBatch: () => Promise<void> }).writeBatch;
    (log as unknown as { writeBatch: () => Promise<void> }).writeBatch = function (this: DecisionLog) {
      // A write whose queue is empty sends nothing: only real batches are counted.
      if ((log as unknown as { queue: string[] }).queue.length > 0) writes.push({ inFlight, afterAnswer: answered });
      return original.call(this);
    };
    // A Governor's pace: one decision every 4 ms, for long enough that several batches fall due.
    for (let n = 0; n < 80; n++) {
      await new Promise((resolve) => setTimeout(resolve, 4));
      answered = false;
      inFlight += 1;
      const decision = gate.evaluate(plan({ planId: `paced-${n}` }));
      await decision;
      inFlight -= 1;
      answered = true;
      // The turn of the event loop that follows the answer: the log packs the entry and writes what is due.
      await new Promise((resolve) => setImmediate(resolve));
      answered = false;
    }
    expect(writes.length, 'several batches fell due').to.be.at.least(3);
    // Each batch was sent in the turn right after a decision was answered, with none in flight.
    expect(writes.filter((w) => w.inFlight > 0 || !w.afterAnswer), JSON.stringify(writes)).to.deep.equal([]);
  });

  it('writes nothing with decisionLogMaxLen 0, and keeps the stream near decisionLogMaxLen', async () => {
    const nowMs = Date.now();
    await client.hset(keys.budget('ETHUSDT'), budgetFields({}, nowMs));
    const off = newGate({ decisionLogMaxLen: 0 });
    await off.ready();
    for (let n = 0; n < 20; n++) await off.evaluate(plan());
    await new Promise((r) => setTimeout(r, 100));
    expect(await client.xlen(STREAM)).to.equal(0);
    expect(off.registry.getSingleMetric('p28_decision_log_written_total')).to.equal(undefined);
    const bounded = newGate({ decisionLogMaxLen: 100 });
    await bounded.ready();
    for (let n = 0; n < 1000; n++) await bounded.evaluate(plan());
    await eventually(async () => (await metricValue(bounded.registry, 'p28_decision_log_written_total')) === 1000);
    const length = await client.xlen(STREAM);
    // MAXLEN ~ trims whole stream nodes (100 entries each by default): never far past the bound.
    expect(length).to.be.at.least(100).and.at.most(200);
  });

  it('logs the HTTP API\'s decisions as via=http under the worker\'s instance id, and shows drops in /metrics', async () => {
    let service: WorkerServiceHandle | undefined;
    try {
      service = await startWorkerService(workerConfig(redis.server, { PORT: '0', P28_INSTANCE_ID: 'api-1', BUDGET_COMPUTE_INTERVAL_SEC: '60', BUDGET_HASH_TTL_SEC: '120' }), {
        heatSource: { read: async () => ({ value: 0.65, source: 'live' }) },
        processMetrics: false,
      });
      await client.hset(keys.budget('ETHUSDT'), budgetFields());
      const res = await fetch(`http://127.0.0.1:${service.port}/v1/decisions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(plan({ planId: 'http-1' })),
      });
      expect(((await res.json()) as GateDecision).reason).to.equal('within_budget');
      await eventually(async () => (await entries(client)).some(([, f]) => asObject(f).plan_id === 'http-1'));
      const entry = (await entries(client)).map(([, f]) => asObject(f)).find((f) => f.plan_id === 'http-1')!;
      expect(entry).to.include({ via: 'http', gate: 'api-1', reason: 'within_budget', budget_usd: '1348' });
      const metrics = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
      expect(metrics).to.match(/^p28_decision_log_dropped_total\{cause="queue_full"\} 0$/m);
      expect(metrics).to.match(/^p28_decision_log_written_total 1$/m);
    } finally {
      await service?.stop();
    }
  });
});

describe('decision log under a slow or dead Redis', function () {
  this.timeout(60000);
  let server: LocalRedisServer;
  let client: RedisClient;

  beforeEach(async () => {
    server = await LocalRedisServer.start();
    client = await connectedClient(server);
  });
  afterEach(async () => {
    client.disconnect();
    await server.stop();
  });

  const decisionOf = (n: number): GateDecision => ({ allow: true, reason: 'within_budget', enforced: false, failOpen: false, wouldBlock: false, mode: 'shadow', source: 'redis', budgetUsd: n });

  function newLog(registry: Registry, queueCapacity: number): DecisionLog {
    return new DecisionLog({ client, streamKey: STREAM, maxLen: 1000000, instanceId: 'log-test', via: 'node', policy: DEFAULT_POLICY, registry, logger: silentLogger, queueCapacity, batchEntries: 50 });
  }

  it('holds at most its queue capacity while Redis is paused (SIGSTOP), counts every dropped entry, and writes the rest once it answers', async () => {
    const registry = new Registry();
    const log = newLog(registry, 200);
    for (let n = 0; n < 10; n++) log.append(plan(), decisionOf(n), Date.now(), false);
    await eventually(() => log.writtenCount === 10);
    server.pause();
    try {
      const appended = 5000;
      for (let n = 0; n < appended; n++) {
        log.append(plan(), decisionOf(n), Date.now(), false);
        expect(log.pending).to.be.at.most(200);
        if (n % 500 === 0) await new Promise((r) => setTimeout(r, 10));
      }
      const dropped = log.droppedCount;
      expect(dropped.queue_full).to.be.at.least(appended - 200 - 50);
      expect(await metricValue(registry, 'p28_decision_log_dropped_total', { cause: 'queue_full' })).to.equal(dropped.queue_full);
    } finally {
      server.resume();
    }
    await eventually(() => log.pending === 0, 10000);
    const { queue_full: full, write_failed: failed } = log.droppedCount;
    // Every entry appended is either confirmed or counted as dropped; none is lost unseen.
    await eventually(() => log.writtenCount + full + failed === 5010, 10000);
    expect(await client.xlen(STREAM)).to.be.at.least(log.writtenCount);
    await log.close();
  });

  it('keeps entries within its bound while Redis is down, counts what it drops, and writes the rest after a restart', async () => {
    const registry = new Registry();
    const log = newLog(registry, 100);
    log.append(plan(), decisionOf(0), Date.now(), false);
    await eventually(() => log.writtenCount === 1);
    await server.kill();
    for (let n = 0; n < 300; n++) log.append(plan(), decisionOf(n), Date.now(), false);
    expect(log.pending).to.be.at.most(100);
    expect(log.droppedCount.queue_full).to.equal(200);
    await server.restart();
    await untilPong(client);
    await eventually(() => log.writtenCount === 101, 15000);
    expect(await client.xlen(STREAM)).to.equal(100);
    await log.close();
  });

  it('never changes or delays a decision: a paused Redis still gets fail-open decisions within timeoutMs, counted drops, and logging resumes after', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields());
    const gate = new BudgetGate({ redisUrl: server.url, instanceId: 'gate-paused' });
    const quiet = new BudgetGate({ redisUrl: server.url, decisionLogMaxLen: 0 });
    try {
      await Promise.all([gate.ready(), quiet.ready()]);
      expect((await gate.evaluate(plan())).reason).to.equal('within_budget');
      server.pause();
      const reasons: string[] = [];
      try {
        for (let n = 0; n < 400; n++) {
          const started = performance.now();
          const [logged, unlogged] = await Promise.all([gate.evaluate(plan()), quiet.evaluate(plan())]);
          expect(performance.now() - started).to.be.below(50 + 100);
          expect(logged.allow).to.equal(true);
          expect(logged.failOpen).to.equal(unlogged.failOpen);
          reasons.push(logged.reason);
        }
      } finally {
        server.resume();
      }
      expect(reasons.every((r) => ['timeout', 'breaker_open'].includes(r))).to.equal(true);
      await eventually(async () => (await metricValue(gate.registry, 'p28_decision_log_written_total')) >= 401, 15000);
      const written = await metricValue(gate.registry, 'p28_decision_log_written_total');
      const dropped = await metricValue(gate.registry, 'p28_decision_log_dropped_total', { cause: 'write_failed' });
      expect(written + dropped).to.equal(401);
    } finally {
      await gate.close();
      await quiet.close();
    }
  });
});

describe('decision log on Redis Cluster', function () {
  this.timeout(60000);
  let cluster: LocalRedisCluster;
  let client: RedisClient;

  before(async function () {
    this.timeout(60000);
    cluster = await LocalRedisCluster.start(3);
    client = createRedisClient({ url: 'redis://127.0.0.1:6379', clusterNodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })), profile: 'worker' });
    client.on('error', () => undefined);
    await waitForReady(client, 10000);
  });
  after(async () => {
    client.disconnect();
    await cluster.stop();
  });

  it('appends every decision to the one stream key through a Cluster client', async () => {
    const gateClient = createRedisClient({ url: 'redis://127.0.0.1:6379', clusterNodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })), profile: 'gate', commandTimeoutMs: 1000 });
    gateClient.on('error', () => undefined);
    await waitForReady(gateClient, 10000);
    const gate = new BudgetGate({ redis: gateClient, instanceId: 'cluster-gate', timeoutMs: 1000 });
    try {
      const symbols = ['ETHUSDT', 'BTCUSDT', 'SOLUSDT', 'XRPUSDT'];
      for (const symbol of symbols) await client.hset(keys.budget(symbol), budgetFields({ symbol }));
      for (const symbol of symbols) expect((await gate.evaluate(plan({ symbol, planId: `c-${symbol}` }))).reason).to.equal('within_budget');
      await eventually(async () => (await client.xlen(STREAM)) === symbols.length, 10000);
      const logged = ((await client.xrange(STREAM, '-', '+')) as Entry[]).map(([, f]) => asObject(f));
      expect(logged.map((f) => f.plan_id).sort()).to.deep.equal(symbols.map((s) => `c-${s}`).sort());
      expect(logged.every((f) => f.gate === 'cluster-gate' && f.equity_usd === '100000')).to.equal(true);
    } finally {
      await gate.close();
      gateClient.disconnect();
    }
  });
});
