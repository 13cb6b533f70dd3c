import { expect } from 'chai';
import { Registry } from 'prom-client';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import { startHttpServer, type HttpServerHandle } from '../../../lib/worker/http-server';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { createRedisClient } from '../../../lib/redis/client';
import { BudgetGate } from '../../../plugin/budget-gate';
import type { BudgetGateOptions } from '../../../plugin/gate-options';
import { GateReason, type GateDecision } from '../../../types/permit';
import { budgetFields, plan } from '../../support/gate-fixtures';
import { LocalRedisServer, freePort } from '../../support/local-redis-server';
import { connectedClient, useRedisServer } from '../../support/redis';
import { workerConfig } from '../../support/seed';

const keys = new RedisKeys();

/**
 * One decision logic, two ways in: for every reason of the contract, `POST /v1/decisions` answers
 * exactly what the same `BudgetGate` answers in process for the same request and the same hash.
 */
describe('POST /v1/decisions and the in-process gate agree on every reason', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let admin: RedisClient;
  const seen = new Set<string>();
  const nowSec = () => Math.floor(Date.now() / 1000);

  before(async () => {
    admin = await connectedClient(redis.server);
  });
  after(() => {
    admin.disconnect();
    // The list of reasons is the contract's closed set: every one of them was compared.
    expect([...seen].sort()).to.deep.equal([...GateReason.options].sort());
  });
  beforeEach(() => admin.flushall());

  /** Asks `gate` over HTTP, then in process, and checks both answers are the same decision. */
  async function both(gate: BudgetGate, request: unknown): Promise<GateDecision> {
    // The worker only stands behind /health here; it is never started.
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: admin });
    const http: HttpServerHandle = await startHttpServer({ host: '127.0.0.1', port: 0, registry: new Registry(), redis: admin, worker, gate, instanceId: 'parity', maxBudgetAgeSec: 15 });
    try {
      const res = await fetch(`http://127.0.0.1:${http.port}/v1/decisions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      expect(res.status).to.equal(200);
      const overHttp = (await res.json()) as GateDecision;
      const inProcess = await gate.evaluate(request as never);
      expect(overHttp).to.deep.equal(JSON.parse(JSON.stringify(inProcess)));
      seen.add(overHttp.reason);
      return overHttp;
    } finally {
      await http.close();
    }
  }

  async function withGate(options: Partial<BudgetGateOptions>, run: (gate: BudgetGate) => Promise<void>): Promise<void> {
    const gate = new BudgetGate({ redisUrl: redis.server.url, registry: new Registry(), ...options });
    try {
      await gate.ready().catch(() => undefined);
      await run(gate);
    } finally {
      await gate.close();
    }
  }

  const seed = (overrides: Parameters<typeof budgetFields>[0] = {}) =>
    admin.hset(keys.budget('ETHUSDT'), budgetFields(overrides, Date.now()));

  it('judges from the hash: within_budget, reduce_only, p28_budget_violation (both details), shadow_would_block', async () => {
    await withGate({}, async (gate) => {
      await seed();
      expect(await both(gate, plan({ qty: 0.1 }))).to.include({ reason: 'within_budget' });
      expect(await both(gate, plan({ side: 'SELL', qty: 0.5 }))).to.include({ reason: 'reduce_only' });
      expect(await both(gate, plan({ qty: 0.4 }))).to.include({ reason: 'p28_budget_violation', detail: 'projected_over_budget' });
      await seed({ last_violation_ts: nowSec() });
      expect(await both(gate, plan({ qty: 0.1 }))).to.include({ reason: 'p28_budget_violation', detail: 'recent_violation' });
      await seed({ mode: 'shadow' });
      expect(await both(gate, plan({ qty: 0.4 }))).to.include({ reason: 'shadow_would_block', allow: true });
    });
  });

  it('fails open alike on missing, stale and invalid data and on an invalid request', async () => {
    await withGate({}, async (gate) => {
      expect(await both(gate, plan({ symbol: 'XRPUSDT' }))).to.include({ reason: 'no_budget_data', failOpen: true });
      await seed({ timestamp: nowSec() - 600 });
      expect(await both(gate, plan())).to.include({ reason: 'stale_budget_data', failOpen: true });
      await admin.hset(keys.budget('ETHUSDT'), { budget_usd: 'abc' });
      expect(await both(gate, plan())).to.include({ reason: 'invalid_budget_data', failOpen: true });
      expect(await both(gate, { planId: 'p', symbol: 'eth usdt', action: 'OPEN' })).to.include({ reason: 'invalid_request', failOpen: true });
    });
  });

  it('answers gate_disabled alike when the emergency switch is on', async () => {
    await withGate({ disabled: true }, async (gate) => {
      expect(await both(gate, plan())).to.include({ reason: 'gate_disabled' });
    });
  });

  it('fails open alike when Redis cannot be reached, times out, and once the breaker is open', async () => {
    const dead = await freePort();
    const unreachable = new BudgetGate({ redis: createRedisClient({ url: `redis://127.0.0.1:${dead}`, profile: 'gate', lazyConnect: true }), registry: new Registry() });
    try {
      expect(await both(unreachable, plan())).to.include({ reason: 'redis_unavailable', failOpen: true });
    } finally {
      await unreachable.close();
    }

    const frozen = await LocalRedisServer.start();
    const gate = new BudgetGate({ redisUrl: frozen.url, registry: new Registry(), timeoutMs: 50 });
    try {
      await gate.ready();
      frozen.pause();
      expect(await both(gate, plan())).to.include({ reason: 'timeout', failOpen: true });
      const deadline = Date.now() + 5000;
      while ((await gate.evaluate(plan())).reason !== 'breaker_open' && Date.now() < deadline);
      expect(await both(gate, plan())).to.include({ reason: 'breaker_open', failOpen: true });
    } finally {
      frozen.resume();
      await gate.close();
      await frozen.stop();
    }
  });
});
