import { createHook } from 'node:async_hooks';
import { expect } from 'chai';
import { Registry, register as globalRegistry } from 'prom-client';
import CircuitBreaker from 'opossum';
import sinon from 'sinon';
import { RedisKeys } from '../../../lib/redis/keys';
import { freePort, LocalRedisServer } from '../../support/local-redis-server';
import { useRedisCluster } from '../../support/redis-cluster';
import { createRedisClient, type RedisClient } from '../../../lib/redis/client';
import { withScripts, type ScriptCommands } from '../../../lib/redis/lua-scripts';
import { BudgetGate } from '../../../plugin/budget-gate';
import { GateOptionsError, type BudgetGateOptions } from '../../../plugin/gate-options';
import { encodeViolationEvent } from '../../../types/violation-event';
import { GateReason, type GateDecision, type PermitRequest } from '../../../types/permit';
import { budgetFields, plan } from '../../support/gate-fixtures';
import { captureLogs } from '../../support/log-capture';
import { metricValue } from '../../support/metric-values';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';

const keys = new RedisKeys();
const OVER_BUDGET = { qty: 0.4 };
/** "At once": no Redis wait at all, with room for a busy test machine; far below any timeoutMs used here. */
const AT_ONCE_MS = 25;

/** Time one decision: [decision, elapsed ms]. */
async function timed(gate: BudgetGate, request: PermitRequest): Promise<[GateDecision, number]> {
  const started = performance.now();
  const decision = await gate.evaluate(request);
  return [decision, performance.now() - started];
}

/** Collects gates made by a suite and closes them after each test. */
function gateFactory() {
  const made: BudgetGate[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((gate) => gate.close()));
  });
  return (options: BudgetGateOptions): BudgetGate => {
    const gate = new BudgetGate({ registry: new Registry(), ...options });
    made.push(gate);
    return gate;
  };
}

describe('BudgetGate', () => {
  const redis = useRedisServer();
  const newGate = gateFactory();
  let client: RedisClient & ScriptCommands;
  let admin: RedisClient;

  before(async () => {
    // The decision script defined before any spy, so a gate built later keeps the spied method.
    client = withScripts(await connectedClient(redis.server, 'gate', 100));
    admin = await connectedClient(redis.server);
  });
  after(() => {
    client.disconnect();
    admin.disconnect();
  });
  beforeEach(async () => {
    await admin.flushall();
  });
  afterEach(() => sinon.restore());

  const writeBudget = (fields: Record<string, string>, symbol = 'ETHUSDT') => admin.hset(keys.budget(symbol), fields);

  it('allows a plan inside the budget as within_budget, judged from the hash in Redis', async () => {
    await writeBudget(budgetFields());
    const decision = await newGate({ redis: client }).evaluate(plan({ qty: 0.3 }));
    expect(decision).to.deep.equal({
      allow: true,
      reason: 'within_budget',
      enforced: true,
      failOpen: false,
      wouldBlock: false,
      mode: 'enforce',
      budgetUsd: 1348,
      positionNotionalUsd: 1000,
      projectedNotionalUsd: 1300,
      reservedUsd: 0,
      source: 'redis',
    });
  });

  it('blocks an over-budget plan under mode=enforce and allows it as shadow_would_block under shadow', async () => {
    const gate = newGate({ redis: client });
    await writeBudget(budgetFields({ mode: 'enforce' }));
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({
      allow: false,
      reason: 'p28_budget_violation',
      detail: 'projected_over_budget',
      enforced: true,
      wouldBlock: true,
      projectedNotionalUsd: 1400,
    });
    await writeBudget(budgetFields({ mode: 'shadow' }));
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({
      allow: true,
      reason: 'shadow_would_block',
      detail: 'projected_over_budget',
      enforced: false,
      wouldBlock: true,
      mode: 'shadow',
    });
  });

  it('follows the mode switched in the hash between two calls, without a restart', async () => {
    const gate = newGate({ redis: client });
    await writeBudget(budgetFields({ mode: 'shadow' }));
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('shadow_would_block');
    await admin.hset(keys.budget('ETHUSDT'), 'mode', 'enforce');
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');
    await admin.hset(keys.budget('ETHUSDT'), 'mode', 'shadow');
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('shadow_would_block');
  });

  it('blocks an increasing plan on a recent violation recorded in the hash', async () => {
    await writeBudget(budgetFields({ last_violation_ts: Date.now() / 1000 - 5 }));
    expect(await newGate({ redis: client }).evaluate(plan({ qty: 0.1 }))).to.include({
      allow: false,
      reason: 'p28_budget_violation',
      detail: 'recent_violation',
    });
  });

  it('finds a violation of symbol A after 1000 newer violations of other symbols', async function () {
    this.timeout(10000);
    const nowS = Date.now() / 1000;
    await writeBudget(budgetFields({ last_violation_ts: nowS - 20 }), 'ETHUSDT');
    const violation = { event_type: 'budget.violation', position_notional: 5000, budget_usd: 1348, over_budget: 3652, mode: 'enforce' } as const;
    const batch = admin.pipeline();
    batch.xadd(keys.violationStream, '*', ...encodeViolationEvent({ ...violation, symbol: 'ETHUSDT', timestamp: nowS - 20 }));
    for (let i = 0; i < 1000; i += 1) {
      const symbol = `SYM${i}USDT`;
      const at = nowS - 19 + i / 100;
      batch.xadd(keys.violationStream, '*', ...encodeViolationEvent({ ...violation, symbol, timestamp: at }));
      batch.hset(keys.budget(symbol), budgetFields({ symbol, last_violation_ts: at, position_notional_usd: 5000, position_amt: 5 }));
    }
    await batch.exec();
    const newest = await admin.xrevrange(keys.violationStream, '+', '-', 'COUNT', 1000);
    expect(newest).to.have.length(1000);
    expect(newest.some(([, fields]) => fields.includes('ETHUSDT'))).to.equal(false);

    expect(await newGate({ redis: client }).evaluate(plan({ qty: 0.1 }))).to.include({
      allow: false,
      reason: 'p28_budget_violation',
      detail: 'recent_violation',
    });
  });

  it('fails open with no_budget_data when the symbol has no budget hash', async () => {
    expect(await newGate({ redis: client }).evaluate(plan(OVER_BUDGET))).to.deep.equal({
      allow: true,
      reason: 'no_budget_data',
      enforced: false,
      failOpen: true,
      wouldBlock: false,
      mode: null,
      source: 'redis',
    });
  });

  it('fails open with invalid_budget_data for a malformed field and for an unknown mode', async () => {
    const gate = newGate({ redis: client });
    await writeBudget({ ...budgetFields(), budget_usd: 'lots' });
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: true, failOpen: true, reason: 'invalid_budget_data', detail: 'budget_usd' });
    await writeBudget({ ...budgetFields(), mode: 'block_everything' });
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: true, failOpen: true, reason: 'invalid_budget_data', detail: 'mode', mode: null });
  });

  it('fails open with invalid_budget_data when the key is not a hash, without counting a breaker failure', async () => {
    const gate = newGate({ redis: client, volumeThreshold: 0, errorThresholdPercentage: 1 });
    await admin.set(keys.budget('ETHUSDT'), 'not a hash');
    for (let i = 0; i < 5; i += 1) {
      expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ reason: 'invalid_budget_data', detail: 'wrong_type', failOpen: true });
    }
    expect(gate.breakerState).to.equal('closed');
    expect(await metricValue(gate.registry, 'p28_gate_breaker_events_total', { event: 'failure' })).to.equal(0);
  });

  it('turns a failed read into a fail-open redis_unavailable counted as a breaker failure, never a block', async () => {
    await writeBudget(budgetFields({ mode: 'enforce' }));
    const gate = newGate({ redis: client, volumeThreshold: 3 });
    sinon.stub(client, 'p28DecidePlan').rejects(new Error('read ECONNRESET'));
    for (let i = 0; i < 3; i += 1) {
      expect(await gate.evaluate(plan(OVER_BUDGET))).to.deep.equal({
        allow: true,
        reason: 'redis_unavailable',
        enforced: false,
        failOpen: true,
        wouldBlock: false,
        mode: null,
        detail: 'read ECONNRESET',
        source: 'none',
      });
    }
    expect(await metricValue(gate.registry, 'p28_gate_breaker_events_total', { event: 'failure' })).to.equal(3);
    expect(gate.breakerState).to.equal('open');
    // An open breaker is answered before opossum is asked: no fire(), so no rejection error built.
    const fire = sinon.spy(CircuitBreaker.prototype, 'fire');
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('breaker_open');
    expect(fire.callCount).to.equal(0);
    expect(await metricValue(gate.registry, 'p28_gate_breaker_events_total', { event: 'reject' })).to.equal(1);
  });

  it('fails open with stale_budget_data for a timestamp older than staleAfterMs and for one in the future', async () => {
    await writeBudget(budgetFields({ timestamp: 1_700_000_000 }));
    const old = newGate({ redis: client, now: () => 1_700_000_061_000 });
    expect(await old.evaluate(plan(OVER_BUDGET))).to.include({ reason: 'stale_budget_data', detail: 'stale', failOpen: true, allow: true });
    const future = newGate({ redis: client, now: () => 1_699_999_994_000 });
    expect(await future.evaluate(plan(OVER_BUDGET))).to.include({ reason: 'stale_budget_data', detail: 'timestamp_in_future', failOpen: true });
    const fresh = newGate({ redis: client, now: () => 1_700_000_030_000 });
    expect((await fresh.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');
  });

  it('answers reduceOnly and close actions with reduce_only without touching Redis', async () => {
    await writeBudget(budgetFields());
    const read = sinon.spy(client, 'p28DecidePlan');
    const gate = newGate({ redis: client });
    const reduceOnly = await gate.evaluate(plan({ ...OVER_BUDGET, reduceOnly: true }));
    const close = await gate.evaluate(plan({ ...OVER_BUDGET, action: 'PARTIAL_50' }));
    expect(read.callCount).to.equal(0);
    for (const decision of [reduceOnly, close]) {
      expect(decision).to.deep.equal({ allow: true, reason: 'reduce_only', enforced: false, failOpen: false, wouldBlock: false, mode: null, source: 'none' });
    }
    const selling = await gate.evaluate(plan({ side: 'SELL', qty: 0.5 }));
    expect(read.callCount).to.equal(1);
    expect(selling).to.include({ allow: true, reason: 'reduce_only', mode: 'enforce', projectedNotionalUsd: 500 });
  });

  it('decides with one call of the decision script per decision: one round trip, one key, one HMGET of the known fields', async () => {
    await writeBudget(budgetFields());
    // A clock of its own: no TIME from the gate's Redis clock lands among the script's.
    const gate = newGate({ redis: client, now: () => Date.now() });
    await admin.config('RESETSTAT');
    for (let i = 0; i < 3; i += 1) await gate.evaluate(plan());
    const stats = await admin.info('commandstats');
    const calls = Object.fromEntries([...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map(([, name, count]) => [name, Number(count)]));
    // Inside the script: one HMGET, and for each plan it reserves the Redis clock and one HSET.
    expect(calls).to.deep.equal({ evalsha: 3, hmget: 3, time: 3, hset: 3 });
  });

  it('fails open with invalid_request for a malformed request without touching Redis, and never throws', async () => {
    await writeBudget(budgetFields());
    const read = sinon.spy(client, 'p28DecidePlan');
    const gate = newGate({ redis: client });
    const malformed: unknown[] = [
      null,
      undefined,
      {},
      'BUY ETH',
      { ...plan(OVER_BUDGET), symbol: 'eth*' },
      { ...plan(OVER_BUDGET), qty: -1 },
      { ...plan(OVER_BUDGET), notionalUsd: Number.NaN },
      { ...plan(OVER_BUDGET), side: 'LONG' },
      { ...plan(OVER_BUDGET), planId: '' },
    ];
    for (const request of malformed) {
      const decision = await gate.evaluate(request as PermitRequest);
      expect(decision, JSON.stringify(request)).to.include({ allow: true, failOpen: true, reason: 'invalid_request', mode: null });
    }
    expect((await gate.evaluate({ ...plan(OVER_BUDGET), side: 'LONG' } as unknown as PermitRequest)).detail).to.equal('side');
    expect(read.callCount).to.equal(0);
  });

  it('judges a plan by its own properties only: an inherited reduceOnly does not make it reduce_only, a throwing getter is invalid_request', async () => {
    await writeBudget(budgetFields({ mode: 'enforce' }));
    const gate = newGate({ redis: client });
    const proto = Object.prototype as { reduceOnly?: boolean };
    proto.reduceOnly = true;
    try {
      const d = await gate.evaluate(plan(OVER_BUDGET));
      expect(d, JSON.stringify(d)).to.include({ allow: false, reason: 'p28_budget_violation' });
    } finally {
      delete proto.reduceOnly;
    }
    const throwing = { ...plan(OVER_BUDGET), get side(): 'BUY' { throw new Error('getter'); } };
    expect(await gate.evaluate(throwing)).to.include({ allow: true, failOpen: true, reason: 'invalid_request' });
    const trap = new Proxy(plan(OVER_BUDGET), { get() { throw new Error('trap'); }, getOwnPropertyDescriptor() { throw new Error('trap'); } });
    expect(await gate.evaluate(trap)).to.include({ allow: true, failOpen: true, reason: 'invalid_request' });
  });

  it('decides within timeoutMs whatever the size of a field: a huge unknown field is never read, a huge known one fails open as invalid_budget_data', async function () {
    this.timeout(20000);
    const TIMEOUT_MS = 50;
    const bigClient = await connectedClient(redis.server, 'gate', TIMEOUT_MS);
    const huge = '9'.repeat(20 * 1024 * 1024);
    try {
      const gate = newGate({ redis: bigClient, timeoutMs: TIMEOUT_MS });
      await writeBudget({ ...budgetFields({ mode: 'enforce' }), notes: huge });
      await gate.evaluate(plan());
      const [unknownField, unknownMs] = await timed(gate, plan(OVER_BUDGET));
      expect(unknownField).to.include({ reason: 'p28_budget_violation' });
      expect(unknownMs).to.be.below(TIMEOUT_MS);

      await writeBudget({ ...budgetFields({ mode: 'enforce' }), budget_usd: huge });
      const [knownField, knownMs] = await timed(gate, plan(OVER_BUDGET));
      // A loaded machine may not even move 20 MB within timeoutMs: then it is a timeout, still bounded.
      expect(['invalid_budget_data', 'timeout']).to.include(knownField.reason);
      if (knownField.reason === 'invalid_budget_data') expect(knownField.detail).to.equal('budget_usd');
      expect(knownField).to.include({ allow: true, failOpen: true });
      expect(knownMs).to.be.below(TIMEOUT_MS + 150);
    } finally {
      bigClient.disconnect();
    }
  });

  it('disabled: allows everything with gate_disabled without touching Redis, switchable at run time', async () => {
    await writeBudget(budgetFields());
    const read = sinon.spy(client, 'p28DecidePlan');
    const gate = newGate({ redis: client, disabled: true });
    expect(gate.isDisabled).to.equal(true);
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.deep.equal({
      allow: true,
      reason: 'gate_disabled',
      enforced: false,
      failOpen: false,
      wouldBlock: false,
      mode: null,
      source: 'none',
    });
    expect(read.callCount).to.equal(0);
    gate.setDisabled(false);
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');
    gate.setDisabled(true);
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('gate_disabled');
    expect(read.callCount).to.equal(1);
  });

  it('forceShadow: turns an enforce block into shadow_would_block, switchable at run time', async () => {
    await writeBudget(budgetFields({ mode: 'enforce' }));
    const gate = newGate({ redis: client, forceShadow: true });
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: true, reason: 'shadow_would_block', mode: 'shadow', enforced: false });
    gate.setForceShadow(false);
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: false, reason: 'p28_budget_violation', mode: 'enforce' });
    gate.setForceShadow(true);
    expect(gate.isForceShadow).to.equal(true);
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('shadow_would_block');
  });

  it('counts every decision by outcome and reason, with its latency, on the registry passed in', async () => {
    const registry = new Registry();
    const gate = newGate({ redis: client, registry });
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'fail_open', reason: 'timeout' })).to.equal(0);
    expect((await registry.getSingleMetric('p28_gate_decisions_total')?.get())?.values).to.have.length(GateReason.options.length);

    await gate.evaluate(plan(OVER_BUDGET));
    await writeBudget(budgetFields());
    await gate.evaluate(plan(OVER_BUDGET));
    await gate.evaluate(plan(OVER_BUDGET));
    await gate.evaluate(plan({ qty: 0.1 }));
    await gate.evaluate(null as unknown as PermitRequest);

    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'fail_open', reason: 'no_budget_data' })).to.equal(1);
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'block', reason: 'p28_budget_violation' })).to.equal(2);
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'allow', reason: 'within_budget' })).to.equal(1);
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'fail_open', reason: 'invalid_request' })).to.equal(1);
    const duration = 'p28_gate_decision_duration_seconds';
    expect(await metricValue(registry, duration, {}, `${duration}_count`)).to.equal(5);
    expect(await metricValue(registry, duration, { le: '0.25' }, `${duration}_bucket`)).to.equal(5);
    expect(await registry.getSingleMetricAsString(duration)).to.contain('le="0.0001"').and.contain('le="0.00025"');
    expect(await metricValue(registry, 'p28_gate_breaker_state')).to.equal(0);
    // Five reads for four judged plans: after the block, the within-budget plan is read with HMGET
    // first (a repeated block is confirmed that way) and then judged and reserved by the script.
    expect(await metricValue(registry, 'p28_gate_breaker_events_total', { event: 'success' })).to.equal(5);
    expect(globalRegistry.getSingleMetric('p28_gate_decisions_total')).to.equal(undefined);
  });

  it('keeps its metrics on a private registry when none is passed, and shares one registry between two gates', async () => {
    const own = new BudgetGate({ redis: client });
    const registry = new Registry();
    const first = newGate({ redis: client, registry });
    const second = newGate({ redis: client, registry });
    try {
      await own.evaluate(plan({ reduceOnly: true }));
      await first.evaluate(plan({ reduceOnly: true }));
      await second.evaluate(plan({ reduceOnly: true }));
      expect(await metricValue(own.registry, 'p28_gate_decisions_total', { decision: 'allow', reason: 'reduce_only' })).to.equal(1);
      expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'allow', reason: 'reduce_only' })).to.equal(2);
    } finally {
      await own.close();
    }
  });

  it('logs each block and shadow block with the plan and its numbers, each fail-open cause change once, and no plain allow', async () => {
    const { logger, lines } = captureLogs();
    const gate = newGate({ redis: client, logger, reservationTtlMs: 0 });

    await gate.evaluate(plan({ planId: 'p-missing-1' }));
    await gate.evaluate(plan({ planId: 'p-missing-2' }));
    await gate.evaluate({ planId: 'p-bad', symbol: 'eth' } as PermitRequest);
    await writeBudget(budgetFields());
    await gate.evaluate(plan({ planId: 'p-fine', qty: 0.1 }));
    await gate.evaluate(plan({ planId: 'p-close', reduceOnly: true }));
    await gate.evaluate(plan({ planId: 'p-big', qty: 0.4 }));
    await writeBudget(budgetFields({ mode: 'shadow' }));
    await gate.evaluate(plan({ planId: 'p-shadow', qty: 0.4 }));

    expect(lines.map((line) => line.planId)).to.deep.equal(['p-missing-1', 'p-bad', 'p-big', 'p-shadow']);
    expect(lines[0]).to.include({ reason: 'no_budget_data', symbol: 'ETHUSDT', gate: 'p28_budget', previous: null });
    expect(lines[1]).to.include({ reason: 'invalid_request', symbol: 'eth', previous: 'no_budget_data' });
    expect(lines[2]).to.include({
      msg: 'budget gate blocked a plan',
      symbol: 'ETHUSDT',
      reason: 'p28_budget_violation',
      detail: 'projected_over_budget',
      mode: 'enforce',
      budgetUsd: 1348,
      positionNotionalUsd: 1000,
      projectedNotionalUsd: 1400,
    });
    expect(lines[3]).to.include({ reason: 'shadow_would_block', projectedNotionalUsd: 1400 });
  });

  it('with redisUrl creates, uses and closes its own client; a client passed in stays open', async () => {
    await writeBudget(budgetFields());
    const owned = newGate({ redisUrl: redis.server.url, timeoutMs: 80 });
    await eventually(async () => (await owned.evaluate(plan())).reason !== 'redis_unavailable');
    expect((await owned.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');
    const clients = async () => (String(await admin.client('LIST'))).split('\n').filter((line) => line.includes('name=p28-budget-gate')).length;
    expect(await clients()).to.equal(1);
    await owned.close();
    await eventually(async () => (await clients()) === 0);
    expect((await owned.evaluate(plan(OVER_BUDGET))).reason).to.equal('redis_unavailable');

    const borrowing = newGate({ redis: client });
    await borrowing.close();
    expect(client.status).to.equal('ready');
    expect(await client.ping()).to.equal('PONG');
  });

  it('rejects unusable options at construction, naming every problem', () => {
    let failure: unknown;
    try {
      new BudgetGate({ redis: client, redisUrl: 'http://x', timeoutMs: 0, volumeThreshold: 1.5, keyPrefix: 'a b' });
    } catch (error) {
      failure = error;
    }
    expect(failure).to.be.instanceOf(GateOptionsError);
    const { issues, code } = failure as GateOptionsError;
    const problems = issues.map((i) => `${i.field}: ${i.message}`);
    expect(code).to.equal('P28_GATE_OPTIONS');
    expect(problems.join('\n')).to.match(/timeoutMs/).and.match(/volumeThreshold/).and.match(/exactly one of redis and redisUrl/).and.match(/redisUrl: expected a redis:\/\/ or rediss:\/\/ URL/).and.match(/keyPrefix/);
    expect(() => new BudgetGate({})).to.throw(GateOptionsError, /exactly one of redis and redisUrl/);
  });
});

describe('BudgetGate when Redis stops answering (SIGSTOP)', () => {
  const redis = useRedisServer();
  const newGate = gateFactory();
  const TIMEOUT_MS = 50;
  const MARGIN_MS = 150;
  const RESET_MS = 400;
  let client: RedisClient;
  let admin: RedisClient;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    client = await connectedClient(redis.server, 'gate', TIMEOUT_MS);
    admin = await connectedClient(redis.server);
    process.on('unhandledRejection', onUnhandled);
  });
  after(() => {
    redis.server.resume();
    process.off('unhandledRejection', onUnhandled);
    client.disconnect();
    admin.disconnect();
  });

  it('fails open within timeoutMs, opens the breaker, answers breaker_open at once, and recovers after SIGCONT', async function () {
    this.timeout(15000);
    await admin.hset(keys.budget('ETHUSDT'), budgetFields());
    const registry = new Registry();
    const gate = newGate({ redis: client, registry, timeoutMs: TIMEOUT_MS, volumeThreshold: 3, resetTimeoutMs: RESET_MS });
    expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');

    redis.server.pause();
    const sequential: Array<[GateDecision, number]> = [];
    let burst: Array<[GateDecision, number]>;
    try {
      for (let i = 0; i < 8; i += 1) sequential.push(await timed(gate, plan(OVER_BUDGET)));
      burst = await Promise.all(Array.from({ length: 20 }, () => timed(gate, plan(OVER_BUDGET))));
    } finally {
      redis.server.resume();
    }

    for (const [decision, elapsed] of [...sequential, ...burst]) {
      expect(decision).to.include({ allow: true, failOpen: true, wouldBlock: false, enforced: false, mode: null });
      expect(['timeout', 'breaker_open']).to.include(decision.reason);
      expect(elapsed).to.be.below(TIMEOUT_MS + MARGIN_MS);
    }
    // Timeouts until the breaker has seen volumeThreshold reads with more than half failed, then
    // nothing but breaker_open, answered without waiting.
    const reasons = sequential.map(([decision]) => decision.reason);
    const opened = reasons.indexOf('breaker_open');
    expect(opened).to.be.within(2, 3);
    expect(reasons.slice(0, opened)).to.deep.equal(Array(opened).fill('timeout'));
    for (const [decision, elapsed] of [...sequential.slice(opened), ...burst]) {
      expect(decision.reason).to.equal('breaker_open');
      expect(elapsed).to.be.below(AT_ONCE_MS);
    }
    expect(gate.breakerState).to.equal('open');
    expect(await metricValue(registry, 'p28_gate_breaker_state')).to.equal(2);
    expect(await metricValue(registry, 'p28_gate_breaker_events_total', { event: 'open' })).to.equal(1);
    expect(await metricValue(registry, 'p28_gate_breaker_events_total', { event: 'timeout' })).to.equal(opened);
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'fail_open', reason: 'timeout' })).to.equal(opened);
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'fail_open', reason: 'breaker_open' })).to.equal(28 - opened);

    await eventually(() => gate.pendingReads === 0, 2000);
    await new Promise((resolve) => setTimeout(resolve, RESET_MS + 50));
    expect(gate.breakerState).to.equal('halfOpen');
    expect(await metricValue(registry, 'p28_gate_breaker_state')).to.equal(1);
    expect(await gate.evaluate(plan(OVER_BUDGET))).to.include({ allow: false, reason: 'p28_budget_violation' });
    expect(gate.breakerState).to.equal('closed');
    expect(await metricValue(registry, 'p28_gate_breaker_state')).to.equal(0);
    expect((await gate.evaluate(plan({ qty: 0.1 }))).reason).to.equal('within_budget');
    expect(unhandled).to.deep.equal([]);
  });

  it('re-opens after a failed half-open trial while Redis is still stopped', async function () {
    this.timeout(15000);
    await admin.hset(keys.budget('ETHUSDT'), budgetFields());
    const gate = newGate({ redis: client, timeoutMs: TIMEOUT_MS, volumeThreshold: 2, resetTimeoutMs: RESET_MS });
    redis.server.pause();
    try {
      await gate.evaluate(plan());
      await gate.evaluate(plan());
      expect(gate.breakerState).to.equal('open');
      await new Promise((resolve) => setTimeout(resolve, RESET_MS + 50));
      const [trial, elapsed] = await timed(gate, plan());
      expect(trial.reason).to.equal('timeout');
      expect(elapsed).to.be.below(TIMEOUT_MS + MARGIN_MS);
      expect(gate.breakerState).to.equal('open');
      expect((await gate.evaluate(plan())).reason).to.equal('breaker_open');
    } finally {
      redis.server.resume();
    }
    await eventually(() => gate.pendingReads === 0, 2000);
  });

  it('bounds a read by its own timer when the client passed in has a longer command timeout (or none)', async function () {
    this.timeout(10000);
    const slowClient = await connectedClient(redis.server, 'worker');
    try {
      await admin.hset(keys.budget('ETHUSDT'), budgetFields());
      const gate = newGate({ redis: slowClient, timeoutMs: TIMEOUT_MS });
      expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');
      redis.server.pause();
      try {
        const [decision, elapsed] = await timed(gate, plan(OVER_BUDGET));
        expect(decision).to.include({ allow: true, failOpen: true, reason: 'timeout' });
        expect(elapsed).to.be.below(TIMEOUT_MS + MARGIN_MS);
      } finally {
        redis.server.resume();
      }
      await eventually(() => gate.pendingReads === 0, 3000);
    } finally {
      slowClient.disconnect();
    }
  });

  it('closes while Redis is stopped without waiting on it and leaves no reads pending', async function () {
    this.timeout(5000);
    const gate = newGate({ redis: client, timeoutMs: TIMEOUT_MS });
    redis.server.pause();
    try {
      const evaluating = gate.evaluate(plan());
      const started = performance.now();
      await gate.close();
      expect(performance.now() - started).to.be.below(2 * TIMEOUT_MS + MARGIN_MS);
      expect(gate.pendingReads).to.equal(0);
      expect((await evaluating).reason).to.equal('timeout');
      expect(gate.breakerState).to.equal('shutdown');
    } finally {
      redis.server.resume();
    }
    expect(unhandled).to.deep.equal([]);
  });
});

describe('BudgetGate under heavy traffic when Redis freezes (SIGSTOP)', () => {
  const redis = useRedisServer();
  const newGate = gateFactory();
  after(() => redis.server.resume());

  it('opens the breaker within 1 s of a freeze after a healthy period at full speed, each decision within timeoutMs', async function () {
    this.timeout(30000);
    const admin = await connectedClient(redis.server);
    await admin.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
    admin.disconnect();
    const gate = newGate({ redisUrl: redis.server.url });
    await gate.ready();
    const timeoutMs = 50;
    let stop = false;
    let frozenAt = 0;
    let openedAt = 0;
    let worstAfterFreezeMs = 0;
    let healthy = 0;
    const callers = Array.from({ length: 16 }, async () => {
      while (!stop) {
        const [decision, elapsed] = await timed(gate, plan(OVER_BUDGET));
        if (!decision.allow) healthy += 1;
        else expect(decision.failOpen, decision.reason).to.equal(true);
        if (frozenAt > 0) {
          worstAfterFreezeMs = Math.max(worstAfterFreezeMs, elapsed);
          if (openedAt === 0 && gate.breakerState === 'open') openedAt = performance.now();
        }
        await new Promise((r) => setImmediate(r));
      }
    });
    try {
      await new Promise((r) => setTimeout(r, 2000));
      expect(healthy).to.be.above(1000);
      redis.server.pause();
      frozenAt = performance.now();
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      stop = true;
      await Promise.all(callers);
      redis.server.resume();
    }
    expect(openedAt, 'breaker opened').to.be.above(0);
    expect(openedAt - frozenAt).to.be.below(1000);
    expect(worstAfterFreezeMs).to.be.below(timeoutMs + 150);
  });
});

describe('BudgetGate at start-up', () => {
  const redis = useRedisServer();
  const newGate = gateFactory();

  it('judges the first plan from Redis when created and evaluated in the same tick (standalone), and ready() resolves', async function () {
    this.timeout(10000);
    const admin = await connectedClient(redis.server);
    await admin.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
    admin.disconnect();
    const gate = newGate({ redisUrl: redis.server.url, timeoutMs: 1000 });
    const first = gate.evaluate(plan(OVER_BUDGET));
    const second = gate.evaluate(plan());
    expect(await first).to.include({ allow: false, reason: 'p28_budget_violation' });
    expect(await second).to.include({ allow: true, reason: 'within_budget' });
    await gate.ready();
  });

  it('fails open with redis_unavailable at once when Redis is down at start, without waiting timeoutMs each time', async function () {
    this.timeout(10000);
    const port = await freePort();
    const gate = newGate({ redisUrl: `redis://127.0.0.1:${port}`, timeoutMs: 1000 });
    const [first, firstMs] = await timed(gate, plan());
    expect(first).to.include({ allow: true, failOpen: true, reason: 'redis_unavailable' });
    expect(firstMs).to.be.below(1000 + 150);
    const [later, laterMs] = await timed(gate, plan());
    expect(later).to.include({ reason: 'redis_unavailable' });
    expect(laterMs).to.be.below(AT_ONCE_MS);
  });

  describe('on Redis Cluster', () => {
    const cluster = useRedisCluster();

    it('judges the first plan from Redis when created and evaluated in the same tick', async function () {
      this.timeout(15000);
      await cluster.client.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
      const gateClient = createRedisClient({ url: 'redis://127.0.0.1', clusterNodes: cluster.cluster.nodes, profile: 'gate', commandTimeoutMs: 1000 });
      gateClient.on('error', () => undefined);
      try {
        const gate = newGate({ redis: gateClient, timeoutMs: 1000 });
        const first = gate.evaluate(plan(OVER_BUDGET));
        expect(await first).to.include({ allow: false, reason: 'p28_budget_violation' });
        await gate.ready();
        expect(await gate.evaluate(plan())).to.include({ reason: 'within_budget' });
      } finally {
        gateClient.disconnect();
      }
    });
  });
});

describe('BudgetGate when Redis is killed', () => {
  const newGate = gateFactory();
  let server: LocalRedisServer;

  beforeEach(async function () {
    this.timeout(10000);
    server = await LocalRedisServer.start();
  });
  afterEach(async () => {
    await server.stop();
  });

  it('fails open with redis_unavailable at once while the client is not ready, and recovers on restart', async function () {
    this.timeout(15000);
    const client = await connectedClient(server, 'gate', 100);
    try {
      const gate = newGate({ redis: client, timeoutMs: 100 });
      await client.hset(keys.budget('ETHUSDT'), budgetFields());
      expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');

      await server.kill();
      await eventually(() => client.status !== 'ready');
      for (let i = 0; i < 20; i += 1) {
        const [decision, elapsed] = await timed(gate, plan(OVER_BUDGET));
        expect(decision).to.deep.equal({
          allow: true,
          reason: 'redis_unavailable',
          enforced: false,
          failOpen: true,
          wouldBlock: false,
          mode: null,
          detail: `client_${client.status}`,
          source: 'none',
        });
        expect(elapsed).to.be.below(AT_ONCE_MS);
      }
      expect(gate.breakerState).to.equal('closed');

      await server.restart();
      await eventually(() => client.status === 'ready', 10000);
      expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('no_budget_data');
      await client.hset(keys.budget('ETHUSDT'), budgetFields());
      expect((await gate.evaluate(plan(OVER_BUDGET))).reason).to.equal('p28_budget_violation');
    } finally {
      client.disconnect();
    }
  });

  it('fails open at once right after the kill with its own client, and close() leaves no timer or socket behind', async function () {
    this.timeout(15000);
    // Every timer and TCP handle created from here until close() must be released afterwards
    // (mocha's own test timer aside).
    const alive = new Map<number, string>();
    let tracking = true;
    const hook = createHook({
      init(id, type) {
        if (!tracking || !(type === 'Timeout' || type.startsWith('TCP'))) return;
        const stack = new Error().stack ?? '';
        if (!stack.includes('node_modules/mocha/')) alive.set(id, `${type} ${stack}`);
      },
      destroy(id) {
        alive.delete(id);
      },
    }).enable();
    try {
      const gate = newGate({ redisUrl: server.url, timeoutMs: 100 });
      await eventually(async () => (await gate.evaluate(plan())).reason === 'no_budget_data');

      await server.kill();
      const decisions = await Promise.all(Array.from({ length: 10 }, () => timed(gate, plan(OVER_BUDGET))));
      for (const [decision, elapsed] of decisions) {
        expect(decision).to.include({ allow: true, failOpen: true, reason: 'redis_unavailable' });
        expect(elapsed).to.be.below(50);
      }
      const closing = performance.now();
      await gate.close();
      tracking = false;
      expect(performance.now() - closing).to.be.below(50);
      expect(gate.pendingReads).to.equal(0);
      // A client closed while reconnecting leaves one ioredis timer (its 2 s disconnectTimeout)
      // that ends by itself; nothing may outlive it.
      await eventually(() => alive.size === 0, 3000).catch((error: Error) => {
        throw new Error(`${error.message}; still alive: ${[...alive.values()].join('\n')}`);
      });
    } finally {
      hook.disable();
    }
  });
});

describe('BudgetGate reasons', () => {
  const newGate = gateFactory();

  it('produces every reason in the contract against a real redis-server', async function () {
    this.timeout(15000);
    const server = await LocalRedisServer.start();
    const client = await connectedClient(server, 'gate', 50);
    const seen = new Set<string>();
    const note = async (gate: BudgetGate, request: unknown) => seen.add((await gate.evaluate(request as PermitRequest)).reason);
    try {
      const gate = newGate({ redis: client, timeoutMs: 50, volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeoutMs: 60000 });
      await note(gate, {});
      await note(gate, plan({ reduceOnly: true }));
      await note(gate, plan());
      await client.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
      await note(gate, plan());
      await note(gate, plan(OVER_BUDGET));
      await client.hset(keys.budget('ETHUSDT'), 'mode', 'shadow');
      await note(gate, plan(OVER_BUDGET));
      await client.hset(keys.budget('ETHUSDT'), 'timestamp', '1000');
      await note(gate, plan());
      await client.hset(keys.budget('ETHUSDT'), 'timestamp', 'x');
      await note(gate, plan());
      gate.setDisabled(true);
      await note(gate, plan());
      gate.setDisabled(false);
      server.pause();
      await note(gate, plan());
      await note(gate, plan());
      server.resume();
      await server.kill();
      await eventually(() => client.status !== 'ready');
      await note(gate, plan());
      expect([...seen].sort()).to.deep.equal([...GateReason.options].sort());
    } finally {
      server.resume();
      client.disconnect();
      await server.stop();
    }
  });
});
