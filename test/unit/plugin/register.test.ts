import 'reflect-metadata';
import { expect } from 'chai';
import { container as globalContainer, inject, injectable, type DependencyContainer } from 'tsyringe';
import { createRedisClient, type RedisClient } from '../../../lib/redis/client';
import { BudgetGate } from '../../../plugin/budget-gate';
import { GateOptionsError } from '../../../plugin/gate-options';
import { PermitPipeline } from '../../../plugin/permit-pipeline';
import { registerBudgetGate } from '../../../plugin/register';
import { PERMIT_GATE } from '../../../plugin/tokens';
import type { GateDecision, PermitGate, PermitRequest } from '../../../types/permit';
import { plan } from '../../support/gate-fixtures';

const OTHER_GATE_NAME = Symbol('OtherGateName');

/** A second gate of the Governor, built by the container like the budget gate. */
@injectable()
class OtherGate implements PermitGate {
  constructor(@inject(OTHER_GATE_NAME) readonly name: string) {}

  async evaluate(_req: PermitRequest): Promise<GateDecision> {
    return { allow: true, reason: 'within_budget', enforced: false, failOpen: false, wouldBlock: false, mode: null };
  }
}

describe('registerBudgetGate', () => {
  let client: RedisClient;
  let root: DependencyContainer;
  const gates: BudgetGate[] = [];

  const register = (target: DependencyContainer) => {
    const gate = registerBudgetGate(target, { redis: client });
    gates.push(gate);
    return gate;
  };

  beforeEach(() => {
    // A client that never connects: these tests are about wiring, not Redis.
    client = createRedisClient({ url: 'redis://127.0.0.1:1', profile: 'gate', lazyConnect: true });
    root = globalContainer.createChildContainer();
  });
  afterEach(async () => {
    await Promise.all(gates.splice(0).map((gate) => gate.close()));
    client.disconnect();
  });

  it('registers the gate under PERMIT_GATE in a container, after the gates registered there before', () => {
    const other = new OtherGate('heat');
    root.register(PERMIT_GATE, { useValue: other });
    const gate = register(root);
    expect(gate).to.be.instanceOf(BudgetGate);
    expect(gate.name).to.equal('p28_budget');
    expect(root.resolveAll(PERMIT_GATE)).to.deep.equal([other, gate]);
    expect(root.resolve(BudgetGate)).to.equal(gate);
  });

  it('registers the gate in a child container alongside another injectable gate, leaving the parent untouched', () => {
    const child = root.createChildContainer();
    child.register(OTHER_GATE_NAME, { useValue: 'rate_limit' });
    child.register(PERMIT_GATE, { useClass: OtherGate });
    const gate = register(child);
    const resolved = child.resolveAll(PERMIT_GATE);
    expect(resolved.map((g) => g.name)).to.deep.equal(['rate_limit', 'p28_budget']);
    expect(resolved[0]).to.be.instanceOf(OtherGate);
    expect(resolved[1]).to.equal(gate);
    expect(root.isRegistered(PERMIT_GATE, true)).to.equal(false);
  });

  it('in a child container hides the parent gates under PERMIT_GATE, as tsyringe resolves the child first', () => {
    root.register(PERMIT_GATE, { useValue: new OtherGate('heat') });
    const child = root.createChildContainer();
    const gate = register(child);
    expect(child.resolveAll(PERMIT_GATE)).to.deep.equal([gate]);
    expect(root.resolveAll(PERMIT_GATE).map((g) => g.name)).to.deep.equal(['heat']);
  });

  it('creates a new gate on each call, with its own options', () => {
    const first = register(root);
    const second = registerBudgetGate(root, { redis: client, disabled: true });
    gates.push(second);
    expect(second).to.not.equal(first);
    expect([first.isDisabled, second.isDisabled]).to.deep.equal([false, true]);
    expect(root.resolveAll(PERMIT_GATE)).to.deep.equal([first, second]);
  });

  it('feeds PermitPipeline.fromContainer with the gates in registration order', async () => {
    root.register(OTHER_GATE_NAME, { useValue: 'heat' });
    root.register(PERMIT_GATE, { useClass: OtherGate });
    register(root);
    const pipeline = PermitPipeline.fromContainer(root);
    expect(pipeline.gates.map((g) => g.name)).to.deep.equal(['heat', 'p28_budget']);
    const result = await pipeline.evaluate(plan({ reduceOnly: true }));
    expect(result.decisions.map(({ gate, decision }) => [gate, decision?.reason])).to.deep.equal([
      ['heat', 'within_budget'],
      ['p28_budget', 'reduce_only'],
    ]);
  });

  it('is closed by container.dispose()', async () => {
    const gate = register(root);
    expect(gate.breakerState).to.equal('closed');
    await root.dispose();
    expect(gate.breakerState).to.equal('shutdown');
    expect(await gate.evaluate(plan())).to.include({ reason: 'redis_unavailable', detail: 'gate_closed', failOpen: true });
  });

  it('throws GateOptionsError for unusable options and registers nothing under PERMIT_GATE', () => {
    expect(() => registerBudgetGate(root, { redis: client, timeoutMs: -1 })).to.throw(GateOptionsError, /timeoutMs/);
    expect(root.isRegistered(PERMIT_GATE)).to.equal(false);
  });
});
