import 'reflect-metadata';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import type { BudgetGate } from '../../../plugin/budget-gate';
import { PermitPipeline } from '../../../plugin/permit-pipeline';
import { registerBudgetGate } from '../../../plugin/register';
import { PERMIT_GATE } from '../../../plugin/tokens';
import type { GateDecision, PermitGate } from '../../../types/permit';
import { budgetFields, plan } from '../../support/gate-fixtures';
import { metricValue } from '../../support/metric-values';
import { connectedClient, useRedisServer } from '../../support/redis';

const keys = new RedisKeys();

describe('PermitPipeline with the budget gate', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  let governor: DependencyContainer;
  let gate: BudgetGate;
  let registry: Registry;
  const heat = sinon.spy(async (): Promise<GateDecision> => ({
    allow: true,
    reason: 'within_budget',
    enforced: false,
    failOpen: false,
    wouldBlock: false,
    mode: null,
  }));

  before(async () => {
    client = await connectedClient(redis.server, 'gate', 50);
  });
  beforeEach(async () => {
    await client.flushall();
    heat.resetHistory();
    registry = new Registry();
    governor = globalContainer.createChildContainer();
    gate = registerBudgetGate(governor, { redis: client, registry, timeoutMs: 50, volumeThreshold: 2, resetTimeoutMs: 60000 });
    governor.register<PermitGate>(PERMIT_GATE, { useValue: { name: 'heat', evaluate: heat } });
  });
  afterEach(() => governor.dispose());
  after(() => client.disconnect());

  it('blocks an over-budget plan under enforce, skips the later gate, and counts the block for the symbol', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
    const result = await PermitPipeline.fromContainer(governor, { registry }).evaluate(plan({ qty: 0.4 }));
    expect(result.allow).to.equal(false);
    expect(result.blockedBy).to.equal('p28_budget');
    expect(result.decisions).to.have.length(1);
    expect(heat.called).to.equal(false);
    expect(await metricValue(registry, 'quantum_govern_block_total', { symbol: 'ETHUSDT', reason: 'p28_budget_violation' })).to.equal(1);
    expect(await metricValue(registry, 'p28_gate_decisions_total', { decision: 'block', reason: 'p28_budget_violation' })).to.equal(1);
  });

  it('lets the same plan through under shadow to the next gate, counted as an allow', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'shadow' }));
    const result = await PermitPipeline.fromContainer(governor, { registry }).evaluate(plan({ qty: 0.4 }));
    expect(result.allow).to.equal(true);
    expect(result.decisions.map((outcome) => outcome.decision?.reason)).to.deep.equal(['shadow_would_block', 'within_budget']);
    expect(heat.calledOnce).to.equal(true);
    expect(await metricValue(registry, 'quantum_govern_allow_total', { symbol: 'ETHUSDT' })).to.equal(1);
    expect(await metricValue(registry, 'quantum_govern_block_total', { symbol: 'ETHUSDT', reason: 'p28_budget_violation' })).to.equal(0);
  });

  it('releases the budget gate\'s reservation at once when a later gate blocks the plan', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
    const blocking = globalContainer.createChildContainer();
    try {
      const budget = registerBudgetGate(blocking, { redis: client, registry: new Registry() });
      const refuse = async (): Promise<GateDecision> => ({ allow: false, reason: 'p28_budget_violation', enforced: true, failOpen: false, wouldBlock: true, mode: 'enforce' });
      blocking.register<PermitGate>(PERMIT_GATE, { useValue: { name: 'heat', evaluate: refuse } });
      const reserved = async () => JSON.parse((await client.hget(keys.budget('ETHUSDT'), 'reservations')) ?? '{}') as Record<string, unknown>;

      // The budget gate alone reserves the plan's increase (0.1 ETH at 1000 USD).
      const kept = plan({ qty: 0.1 });
      expect((await budget.evaluate(kept)).reason).to.equal('within_budget');
      expect(Object.keys(await reserved())).to.deep.equal([kept.planId]);

      const blocked = plan({ qty: 0.2 });
      const result = await PermitPipeline.fromContainer(blocking, { registry: new Registry() }).evaluate(blocked);
      expect(result).to.include({ allow: false, blockedBy: 'heat' });
      expect(result.decisions[0]?.decision).to.include({ reason: 'within_budget', reservedUsd: 100 });
      // Only the blocked plan's reservation is gone, before evaluate() resolved.
      expect(Object.keys(await reserved())).to.deep.equal([kept.planId]);
    } finally {
      await blocking.dispose();
    }
  });

  it('allows every plan while Redis is stopped, within timeoutMs plus a margin', async () => {
    await client.hset(keys.budget('ETHUSDT'), budgetFields({ mode: 'enforce' }));
    const pipeline = PermitPipeline.fromContainer(governor, { registry });
    redis.server.pause();
    try {
      for (let i = 0; i < 5; i += 1) {
        const started = performance.now();
        const result = await pipeline.evaluate(plan({ qty: 0.4 }));
        expect(performance.now() - started).to.be.below(50 + 150);
        expect(result.allow).to.equal(true);
        expect(['timeout', 'breaker_open']).to.include(result.decisions[0]?.decision?.reason);
      }
    } finally {
      redis.server.resume();
    }
    expect(gate.breakerState).to.equal('open');
    expect(await metricValue(registry, 'quantum_govern_allow_total', { symbol: 'ETHUSDT' })).to.equal(5);
  });
});
