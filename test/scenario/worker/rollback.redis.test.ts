import 'reflect-metadata';
import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import type { BudgetGate } from '../../../plugin/budget-gate';
import { registerBudgetGate } from '../../../plugin/register';
import type { Mode } from '../../../types/mode';
import type { GateDecision, PermitRequest } from '../../../types/permit';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';

/**
 * How long a mode switch, an emergency switch and a stopped worker take to change what the gate
 * decides, measured from the operator's action to the first changed decision. The worker runs the
 * production defaults scaled down five times (cycle 1 s instead of 5 s, hash TTL 12 s instead of
 * 60 s, lease 3 s instead of 15 s). The measured figures are printed for the README's runbook.
 */

const INTERVAL_MS = 1000;
/** How often the test asks the gate while waiting for a change: the resolution of the figures. */
const POLL_MS = 10;
/** Timer and scheduling jitter on a busy machine, on top of the stated bounds. */
const SLACK_MS = 250;

/** An add to BTCUSDT (0.5 @ 100000 = 50000 notional against a 1348 budget): over budget. */
const ADD_OVER_BUDGET: PermitRequest = { planId: 'rollback-1', symbol: 'BTCUSDT', action: 'ADD', side: 'BUY', qty: 0.01 };
const keys = new RedisKeys();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rollback timing (worker, override key and gate on a real Redis)', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let client: RedisClient;
  let service: WorkerServiceHandle | undefined;
  let gates: DependencyContainer;
  let gate: BudgetGate;
  /** Longest cycle seen while measuring: the "plus one cycle" of the bound. */
  let longestCycleMs = 0;

  const startWorker = async (env: Record<string, string> = {}) => {
    service = await startWorkerService(
      workerConfig(redis.server, {
        PORT: '0',
        BUDGET_COMPUTE_INTERVAL_SEC: String(INTERVAL_MS / 1000),
        BUDGET_HASH_TTL_SEC: '12',
        LEASE_TTL_MS: '3000',
        ...env,
      }),
      { heatSource: { read: async () => ({ value: 0.65, source: 'live' }) }, processMetrics: false },
    );
    return service;
  };

  /** Asks the gate every POLL_MS until `done`; every other decision must be `meanwhile`. Returns ms since `since`. */
  const untilDecision = async (since: number, done: GateDecision['reason'], meanwhile: GateDecision['reason']): Promise<number> => {
    const deadline = since + 30000;
    for (;;) {
      const decision = await gate.evaluate(ADD_OVER_BUDGET);
      const elapsedMs = performance.now() - since;
      if (decision.reason === done) return elapsedMs;
      expect(decision.reason, `decision before the change arrived (${Math.round(elapsedMs)} ms)`).to.equal(meanwhile);
      if (performance.now() > deadline) throw new Error(`no ${done} decision within 30 s`);
      await sleep(POLL_MS);
    }
  };

  /** Resolves just after the worker finished a cycle, so a switch made now waits for the whole next interval. */
  const justAfterACycle = async () => {
    const before = service!.worker.lastCycle;
    await eventually(() => service!.worker.lastCycle !== before, 5000, 2);
    longestCycleMs = Math.max(longestCycleMs, service!.worker.lastCycle!.durationMs);
  };

  /** Sets the override (as `p28-worker mode <mode>` does) at the given phase of the cycle and times the gate's change. */
  const switchAndTime = async (mode: Mode, phaseMs: number) => {
    const [done, meanwhile]: [GateDecision['reason'], GateDecision['reason']] =
      mode === 'shadow' ? ['shadow_would_block', 'p28_budget_violation'] : ['p28_budget_violation', 'shadow_would_block'];
    await justAfterACycle();
    await sleep(phaseMs);
    const switchedAt = performance.now();
    await client.set(keys.modeOverride, mode);
    const elapsedMs = await untilDecision(switchedAt, done, meanwhile);
    longestCycleMs = Math.max(longestCycleMs, service!.worker.lastCycle!.durationMs);
    return elapsedMs;
  };

  beforeEach(async () => {
    client = await connectedClient(redis.server);
    await client.flushall();
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    gates = rootContainer.createChildContainer();
    // A generous read timeout: this suite measures mode propagation, and a read that fails open on a
    // busy machine would only blur the figures (the demo and the gate's own tests cover fail-open).
    gate = registerBudgetGate(gates, { redisUrl: redis.server.url, timeoutMs: 500 });
    longestCycleMs = 0;
  });
  afterEach(async () => {
    await gates.dispose();
    await service?.stop();
    service = undefined;
    client.disconnect();
  });

  it('a rollback to shadow through the override reaches the gate within one compute interval plus one cycle', async () => {
    await startWorker({ P28_MODE: 'enforce' });
    await eventually(async () => (await gate.evaluate(ADD_OVER_BUDGET)).reason === 'p28_budget_violation', 10000);

    const figures: number[] = [];
    // Right after a cycle (the override is read at the start of a cycle, so this is close to the
    // worst case: the switch waits a whole interval) and in the middle of an interval.
    for (const phaseMs of [0, INTERVAL_MS / 2]) {
      figures.push(await switchAndTime('shadow', phaseMs));
      await client.set(keys.modeOverride, 'enforce');
      await untilDecision(performance.now(), 'p28_budget_violation', 'shadow_would_block');
    }
    for (const [i, ms] of figures.entries()) {
      console.log(`      rollback to shadow reached the gate after ${Math.round(ms)} ms (switched ${i === 0 ? 'just after a cycle' : 'mid-interval'}; interval ${INTERVAL_MS} ms, longest cycle ${longestCycleMs.toFixed(1)} ms)`);
    }
    expect(Math.max(...figures)).to.be.at.most(INTERVAL_MS + longestCycleMs + SLACK_MS);
  });

  it('a switch to enforce through the override reaches the gate within one compute interval plus one cycle', async () => {
    await startWorker();
    await eventually(async () => (await gate.evaluate(ADD_OVER_BUDGET)).reason === 'shadow_would_block', 10000);
    const elapsedMs = await switchAndTime('enforce', 0);
    console.log(`      switch to enforce reached the gate after ${Math.round(elapsedMs)} ms (switched just after a cycle; interval ${INTERVAL_MS} ms, longest cycle ${longestCycleMs.toFixed(1)} ms)`);
    expect(elapsedMs).to.be.at.most(INTERVAL_MS + longestCycleMs + SLACK_MS);
  });

  it('the emergency switch gate.setForceShadow(true) takes effect on the next decision, whatever the hashes say', async () => {
    await startWorker({ P28_MODE: 'enforce' });
    await eventually(async () => (await gate.evaluate(ADD_OVER_BUDGET)).reason === 'p28_budget_violation', 10000);

    const switchedAt = performance.now();
    gate.setForceShadow(true);
    const next = await gate.evaluate(ADD_OVER_BUDGET);
    const elapsedMs = performance.now() - switchedAt;
    expect(next).to.include({ allow: true, reason: 'shadow_would_block', mode: 'shadow', wouldBlock: true });
    expect(await client.hget(keys.budget('BTCUSDT'), 'mode')).to.equal('enforce');
    console.log(`      setForceShadow(true) took effect on the next decision, ${elapsedMs.toFixed(1)} ms after the call`);

    gate.setForceShadow(false);
    expect((await gate.evaluate(ADD_OVER_BUDGET)).reason).to.equal('p28_budget_violation');
  });

  it('after the worker stops, its hashes keep enforcing until BUDGET_HASH_TTL_SEC, then the gate fails open with no_budget_data', async () => {
    const ttlSec = 2;
    await startWorker({ P28_MODE: 'enforce', BUDGET_HASH_TTL_SEC: String(ttlSec) });
    await eventually(async () => (await gate.evaluate(ADD_OVER_BUDGET)).reason === 'p28_budget_violation', 10000);

    await service!.stop();
    service = undefined;
    const stoppedAt = performance.now();
    const ttlLeftMs = await client.pttl(keys.budget('BTCUSDT'));
    expect(ttlLeftMs).to.be.within(1, ttlSec * 1000);
    const elapsedMs = await untilDecision(stoppedAt, 'no_budget_data', 'p28_budget_violation');
    const last = await gate.evaluate(ADD_OVER_BUDGET);
    expect(last).to.include({ allow: true, failOpen: true, reason: 'no_budget_data' });
    console.log(`      after the worker stopped, the gate kept blocking for ${Math.round(elapsedMs)} ms, then failed open with no_budget_data (BUDGET_HASH_TTL_SEC ${ttlSec}; ${ttlLeftMs} ms of TTL were left at the stop)`);
    expect(elapsedMs).to.be.at.most(ttlSec * 1000 + SLACK_MS);
  });
});
