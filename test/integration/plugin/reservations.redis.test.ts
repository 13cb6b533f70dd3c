import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { createRedisClient, type RedisClient } from '../../../lib/redis/client';
import { RedisKeys } from '../../../lib/redis/keys';
import { liveReservations } from '../../../lib/redis/reservations';
import { BudgetGate } from '../../../plugin/budget-gate';
import type { BudgetGateOptions } from '../../../plugin/gate-options';
import type { PermitRequest } from '../../../types/permit';
import { budgetFields } from '../../support/gate-fixtures';
import { metricValue } from '../../support/metric-values';
import { useRedisCluster } from '../../support/redis-cluster';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';

const keys = new RedisKeys();
/** A flat symbol with the guide's budget of 1348 USD. */
const FLAT = { mode: 'enforce', budget_usd: 1348, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 } as const;

let counter = 0;
function open(notionalUsd: number, overrides: Partial<PermitRequest> = {}): PermitRequest {
  counter += 1;
  return { planId: `open-${counter}`, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd, ...overrides };
}

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

async function storedReservations(client: RedisClient, symbol = 'ETHUSDT'): Promise<Record<string, [string, number]>> {
  return JSON.parse((await client.hget(keys.budget(symbol), 'reservations')) ?? '{}') as Record<string, [string, number]>;
}

/** 24 OPENs of 100 USD sent at once through `gates` (round robin); the number allowed. */
async function burst(gates: BudgetGate[]): Promise<number> {
  const decisions = await Promise.all(Array.from({ length: 24 }, (_, i) => gates[i % gates.length]!.evaluate(open(100))));
  for (const d of decisions) expect(d.failOpen, JSON.stringify(d)).to.equal(false);
  return decisions.filter((d) => d.allow).length;
}

describe('Reservations of plans in flight', () => {
  const redis = useRedisServer();
  const newGate = gateFactory();
  let admin: RedisClient;
  const clients: RedisClient[] = [];

  before(async () => {
    admin = await connectedClient(redis.server);
    for (let i = 0; i < 3; i += 1) clients.push(await connectedClient(redis.server, 'gate', 1000));
  });
  after(() => {
    admin.disconnect();
    for (const client of clients) client.disconnect();
  });
  beforeEach(async () => {
    await admin.flushall();
    await admin.hset(keys.budget('ETHUSDT'), budgetFields(FLAT));
  });
  afterEach(() => sinon.restore());

  it('allows exactly 13 of 24 concurrent OPENs of 100 USD against 1348 USD on a flat symbol, across three gates and connections', async () => {
    const gates = clients.map((client) => newGate({ redis: client, timeoutMs: 1000 }));
    expect(await burst(gates)).to.equal(13);
    const held = liveReservations((await admin.hget(keys.budget('ETHUSDT'), 'reservations')) ?? undefined, Date.now());
    expect(held).to.deep.equal({ reservedUsd: 1300, reservations: 13 });
  });

  it('blocks the second of two sequential OPENs of 1000 USD made before the position moves, and shows what was reserved', async () => {
    const gate = newGate({ redis: clients[0]! });
    expect(await gate.evaluate(open(1000))).to.include({ allow: true, reason: 'within_budget', reservedUsd: 0, projectedNotionalUsd: 1000 });
    expect(await gate.evaluate(open(1000))).to.include({
      allow: false,
      reason: 'p28_budget_violation',
      detail: 'projected_over_budget',
      reservedUsd: 1000,
      projectedNotionalUsd: 2000,
    });
  });

  it('counts the same planId asked twice as one plan: one reservation, and its own never counted against it', async () => {
    const gate = newGate({ redis: clients[0]! });
    const retried = open(1000);
    const first = await gate.evaluate(retried);
    const again = await gate.evaluate({ ...retried });
    expect(first).to.include({ allow: true, reason: 'within_budget' });
    expect(again).to.deep.equal(first);
    expect(Object.keys(await storedReservations(admin))).to.deep.equal([retried.planId]);
    expect((await gate.evaluate(open(400))).reason).to.equal('p28_budget_violation');
  });

  it('adds a reservation beside live ones as one more entry of the same JSON object, whatever characters its planId holds', async () => {
    const gate = newGate({ redis: clients[0]! });
    const odd = ['plain', 'quote"d', 'back\\slash', 'sla/sh', 'tab\tand\nnewline', 'ünïcødé ✓'];
    for (const planId of odd) expect((await gate.evaluate(open(100, { planId }))).reason, planId).to.equal('within_budget');
    const stored = await storedReservations(admin);
    expect(Object.keys(stored).sort()).to.deep.equal([...odd].sort());
    for (const planId of odd) expect(stored[planId]![0], planId).to.equal('100');
    expect(liveReservations((await admin.hget(keys.budget('ETHUSDT'), 'reservations')) ?? undefined, Date.now())).to.deep.equal({ reservedUsd: 600, reservations: 6 });
    expect(await gate.evaluate(open(800))).to.include({ reason: 'p28_budget_violation', reservedUsd: 600 });
    expect(await gate.release('quote"d', 'ETHUSDT')).to.equal(true);
    expect(await gate.evaluate(open(700))).to.include({ reason: 'within_budget', reservedUsd: 500 });
  });

  it('never loses a reservation to a corrupted field: a NUL byte, a NUL inside an amount, a nan or inf expiry', async () => {
    const gate = newGate({ redis: clients[0]! });
    const later = Date.now() + 60_000;
    // The script's JSON decoder stops reading at a NUL byte: a new entry spliced in after one would be lost.
    await admin.hset(keys.budget('ETHUSDT'), 'reservations', `{"live":["100",${later}]}\u0000}`);
    expect(await gate.evaluate(open(100, { planId: 'new' }))).to.include({ reason: 'within_budget', reservedUsd: 100 });
    expect(await gate.evaluate(open(100, { planId: 'third' }))).to.include({ reason: 'within_budget', reservedUsd: 200 });
    expect(liveReservations((await admin.hget(keys.budget('ETHUSDT'), 'reservations')) ?? undefined, Date.now())).to.deep.equal({ reservedUsd: 300, reservations: 3 });
    // An amount with a NUL in it reads as its first digits to a C string conversion; an expiry of nan or inf would live forever.
    await admin.hset(keys.budget('ETHUSDT'), 'reservations', `{"live":["100",${later}],"nul":["1\\u00009999",${later}],"nan":["500",nan],"inf":["500",inf]}`);
    expect(await gate.evaluate(open(100, { planId: 'after' }))).to.include({ reason: 'within_budget', reservedUsd: 100 });
    // The unreadable entries are dropped, and the field written again as plain JSON.
    expect(Object.keys(await storedReservations(admin)).sort()).to.deep.equal(['after', 'live']);
    expect(liveReservations((await admin.hget(keys.budget('ETHUSDT'), 'reservations')) ?? undefined, Date.now())).to.deep.equal({ reservedUsd: 200, reservations: 2 });
  });

  it('reserves in shadow as in enforce: shadow_would_block numbers mean what enforce would do', async () => {
    await admin.hset(keys.budget('ETHUSDT'), 'mode', 'shadow');
    const gate = newGate({ redis: clients[0]! });
    expect(await gate.evaluate(open(1000))).to.include({ allow: true, reason: 'within_budget', mode: 'shadow' });
    expect(await gate.evaluate(open(1000))).to.include({ allow: true, reason: 'shadow_would_block', wouldBlock: true, reservedUsd: 1000 });
    // A would-block holds nothing, as the block it stands for would not.
    expect(Object.keys(await storedReservations(admin))).to.have.length(1);
    const forced = newGate({ redis: clients[1]!, forceShadow: true });
    await admin.hset(keys.budget('ETHUSDT'), 'mode', 'enforce');
    expect(await forced.evaluate(open(400))).to.include({ reason: 'shadow_would_block', reservedUsd: 1000 });
  });

  it('lets a reservation lapse after reservationTtlMs: the headroom comes back and the entry is dropped', async () => {
    const gate = newGate({ redis: clients[0]!, reservationTtlMs: 300 });
    expect((await gate.evaluate(open(1000))).reason).to.equal('within_budget');
    expect((await gate.evaluate(open(1000))).reason).to.equal('p28_budget_violation');
    let later = await gate.evaluate(open(1000, { planId: 'after-ttl' }));
    await eventually(async () => {
      later = await gate.evaluate(open(1000, { planId: 'after-ttl' }));
      return later.reason === 'within_budget';
    }, 5000, 50);
    expect(later.reservedUsd).to.equal(0);
    expect(Object.keys(await storedReservations(admin))).to.deep.equal(['after-ttl']);
  });

  it('release() frees a plan\'s headroom at once, and says whether there was anything to free', async () => {
    const gate = newGate({ redis: clients[0]! });
    const filled = open(1000);
    expect((await gate.evaluate(filled)).reason).to.equal('within_budget');
    expect(await gate.release(filled.planId, 'ETHUSDT')).to.equal(true);
    expect(await gate.release(filled.planId, 'ETHUSDT')).to.equal(false);
    expect(await gate.release('', 'ETHUSDT')).to.equal(false);
    expect(await gate.release('x', 'eth*')).to.equal(false);
    expect(await admin.hexists(keys.budget('ETHUSDT'), 'reservations')).to.equal(0);
    expect(await gate.evaluate(open(1000))).to.include({ reason: 'within_budget', reservedUsd: 0 });
  });

  it('answers closes and reduce-only plans without Redis, never blocked by reservations', async () => {
    const gate = newGate({ redis: clients[0]! });
    expect((await gate.evaluate(open(1300))).reason).to.equal('within_budget');
    const call = sinon.spy(clients[0]!, 'p28DecidePlan' as never);
    expect(await gate.evaluate(open(5000, { reduceOnly: true }))).to.include({ allow: true, reason: 'reduce_only' });
    expect(await gate.evaluate(open(5000, { action: 'FULL_CLOSE_PROPOSED' }))).to.include({ allow: true, reason: 'reduce_only' });
    expect(call.callCount).to.equal(0);
  });

  it('reduces a known position whatever is reserved: a SELL against a long is reduce_only and reserves nothing', async () => {
    await admin.hset(keys.budget('ETHUSDT'), budgetFields({ ...FLAT, position_amt: 1, position_notional_usd: 1000, position_price: 1000 }));
    const gate = newGate({ redis: clients[0]! });
    expect((await gate.evaluate(open(300))).reason).to.equal('within_budget');
    expect(await gate.evaluate(open(0, { side: 'SELL', qty: 0.5, notionalUsd: undefined }))).to.include({ reason: 'reduce_only', projectedNotionalUsd: 500 });
    expect(Object.keys(await storedReservations(admin))).to.have.length(1);
  });

  it('judges a plan on a symbol whose position is unknown by its own notional plus what is reserved, naming position_unknown', async () => {
    const upstream = budgetFields(FLAT);
    for (const field of ['position_amt', 'position_notional_usd', 'over_budget_usd', 'position_price', 'position_status']) delete upstream[field];
    await admin.del(keys.budget('ETHUSDT'));
    await admin.hset(keys.budget('ETHUSDT'), upstream);
    const gate = newGate({ redis: clients[0]! });
    expect(await gate.evaluate(open(1000))).to.include({ reason: 'within_budget', detail: 'position_unknown', projectedNotionalUsd: 1000 });
    expect(await gate.evaluate(open(1000))).to.include({ reason: 'p28_budget_violation', detail: 'projected_over_budget,position_unknown', reservedUsd: 1000 });
    // Nothing says a SELL reduces a position nobody knows: it is judged, and reserves, like a BUY.
    expect(await gate.evaluate(open(300, { side: 'SELL' }))).to.include({ reason: 'within_budget', reservedUsd: 1000 });
  });

  it('keeps the reservations through the worker\'s rewrite of the hash', async () => {
    const gate = newGate({ redis: clients[0]! });
    expect((await gate.evaluate(open(1000))).reason).to.equal('within_budget');
    // What the budget writer sends each cycle: HDEL of the optional fields a record lacks, HSET, EXPIRE.
    await admin.multi().hdel(keys.budget('ETHUSDT'), 'position_price', 'position_status').hset(keys.budget('ETHUSDT'), budgetFields(FLAT)).expire(keys.budget('ETHUSDT'), 60).exec();
    expect(await gate.evaluate(open(1000))).to.include({ reason: 'p28_budget_violation', reservedUsd: 1000 });
  });
});

describe('Reservations when Redis freezes mid-reservation (SIGSTOP)', () => {
  const redis = useRedisServer();
  const newGate = gateFactory();

  it('fails open, counted, and leaves nothing held past the TTL once Redis runs again', async function () {
    this.timeout(20000);
    const TTL_MS = 1000;
    const admin = await connectedClient(redis.server);
    const client = await connectedClient(redis.server, 'gate', 50);
    try {
      await admin.hset(keys.budget('ETHUSDT'), budgetFields(FLAT));
      const gate = newGate({ redis: client, timeoutMs: 50, reservationTtlMs: TTL_MS, resetTimeoutMs: 200 });
      redis.server.pause();
      let frozen;
      try {
        frozen = await gate.evaluate(open(1000));
        expect(await gate.evaluate(open(5000, { reduceOnly: true }))).to.include({ allow: true, reason: 'reduce_only' });
      } finally {
        redis.server.resume();
      }
      expect(frozen).to.include({ allow: true, failOpen: true, reason: 'timeout' });
      expect(await metricValue(gate.registry, 'p28_gate_decisions_total', { decision: 'fail_open', reason: 'timeout' })).to.equal(1);
      // The frozen server may still run the script it had been sent: the plan was allowed (failing
      // open), so its reservation stands, but only until its TTL.
      await eventually(async () => {
        const decision = await gate.evaluate(open(1300, { planId: 'probe' }));
        if (decision.reason === 'within_budget') await gate.release('probe', 'ETHUSDT');
        return decision.reason === 'within_budget' && decision.reservedUsd === 0;
      }, TTL_MS + 3000, 100);
    } finally {
      admin.disconnect();
      client.disconnect();
    }
  });
});

describe('Reservations on Redis Cluster', () => {
  const cluster = useRedisCluster();
  const newGate = gateFactory();

  it('allows exactly 13 of 24 concurrent OPENs of 100 USD against 1348 USD, the reservations living in the budget hash\'s own slot', async function () {
    this.timeout(20000);
    await cluster.client.hset(keys.budget('ETHUSDT'), budgetFields(FLAT));
    const gateClients = [0, 1].map(() => {
      const client = createRedisClient({ url: 'redis://127.0.0.1', clusterNodes: cluster.cluster.nodes, profile: 'gate', commandTimeoutMs: 2000 });
      client.on('error', () => undefined);
      return client;
    });
    try {
      const gates = gateClients.map((client) => newGate({ redis: client, timeoutMs: 2000 }));
      await Promise.all(gates.map((gate) => gate.ready()));
      expect(await burst(gates)).to.equal(13);
      expect(liveReservations((await cluster.client.hget(keys.budget('ETHUSDT'), 'reservations')) ?? undefined, Date.now()).reservedUsd).to.equal(1300);
      const [first] = gates;
      const held = Object.keys(JSON.parse((await cluster.client.hget(keys.budget('ETHUSDT'), 'reservations'))!) as object);
      expect(await first!.release(held[0]!, 'ETHUSDT')).to.equal(true);
      expect(await first!.evaluate(open(100))).to.include({ reason: 'within_budget', reservedUsd: 1200 });
    } finally {
      for (const client of gateClients) client.disconnect();
    }
  });
});
