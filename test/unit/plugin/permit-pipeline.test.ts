import 'reflect-metadata';
import { expect } from 'chai';
import { Registry, register as globalRegistry } from 'prom-client';
import sinon from 'sinon';
import { container as globalContainer } from 'tsyringe';
import { PermitPipeline } from '../../../plugin/permit-pipeline';
import { PERMIT_GATE } from '../../../plugin/tokens';
import type { GateDecision, PermitGate, PermitRequest } from '../../../types/permit';
import { plan } from '../../support/gate-fixtures';
import { captureLogs } from '../../support/log-capture';
import { metricValue } from '../../support/metric-values';

const ALLOW: GateDecision = { allow: true, reason: 'within_budget', enforced: true, failOpen: false, wouldBlock: false, mode: 'enforce' };
const BLOCK: GateDecision = {
  allow: false,
  reason: 'p28_budget_violation',
  enforced: true,
  failOpen: false,
  wouldBlock: true,
  mode: 'enforce',
  detail: 'projected_over_budget',
};

function fakeGate(name: string, answer: (req: PermitRequest) => Promise<GateDecision> | GateDecision) {
  const evaluate = sinon.spy(async (req: PermitRequest) => answer(req));
  const gate: PermitGate = { name, evaluate };
  return { gate, evaluate };
}

describe('PermitPipeline', () => {
  it('runs every gate in order and allows when all allow, counting quantum_govern_allow_total{symbol}', async () => {
    const registry = new Registry();
    const first = fakeGate('first', () => ALLOW);
    const second = fakeGate('second', () => ({ ...ALLOW, reason: 'reduce_only' }));
    const pipeline = new PermitPipeline([first.gate, second.gate], { registry });
    const request = plan();
    const result = await pipeline.evaluate(request);
    expect(result).to.deep.equal({
      allow: true,
      decisions: [
        { gate: 'first', decision: ALLOW },
        { gate: 'second', decision: { ...ALLOW, reason: 'reduce_only' } },
      ],
    });
    expect(first.evaluate.calledOnceWithExactly(request)).to.equal(true);
    expect(second.evaluate.calledAfter(first.evaluate)).to.equal(true);
    expect(await metricValue(registry, 'quantum_govern_allow_total', { symbol: 'ETHUSDT' })).to.equal(1);
    expect(await metricValue(registry, 'quantum_govern_block_total', { symbol: 'ETHUSDT', reason: 'p28_budget_violation' })).to.equal(0);
  });

  it('stops at the first block: later gates are not evaluated, and quantum_govern_block_total{symbol,reason} counts it', async () => {
    const registry = new Registry();
    const first = fakeGate('heat', () => ALLOW);
    const blocking = fakeGate('p28_budget', () => BLOCK);
    const never = fakeGate('never', () => ALLOW);
    const pipeline = new PermitPipeline([first.gate, blocking.gate, never.gate], { registry });
    const result = await pipeline.evaluate(plan({ symbol: 'BTCUSDT' }));
    expect(result).to.deep.equal({
      allow: false,
      blockedBy: 'p28_budget',
      decisions: [
        { gate: 'heat', decision: ALLOW },
        { gate: 'p28_budget', decision: BLOCK },
      ],
    });
    expect(never.evaluate.called).to.equal(false);
    expect(await metricValue(registry, 'quantum_govern_block_total', { symbol: 'BTCUSDT', reason: 'p28_budget_violation' })).to.equal(1);
    expect(await metricValue(registry, 'quantum_govern_allow_total', { symbol: 'BTCUSDT' })).to.equal(0);
  });

  it('passes over a gate that throws, rejects or returns no decision as a fail-open, counts and logs it, and runs the rest', async () => {
    const registry = new Registry();
    const { logger, lines } = captureLogs();
    const throwing: PermitGate = {
      name: 'throws',
      evaluate: () => {
        throw new Error('sync boom');
      },
    };
    const rejecting = fakeGate('rejects', () => Promise.reject(new Error('async boom')));
    const empty = fakeGate('empty', () => undefined as unknown as GateDecision);
    const last = fakeGate('last', () => BLOCK);
    const pipeline = new PermitPipeline([throwing, rejecting.gate, empty.gate, last.gate], { registry, logger });
    const request = plan();
    const result = await pipeline.evaluate(request);
    expect(result.decisions).to.deep.equal([
      { gate: 'throws', decision: null, error: 'sync boom' },
      { gate: 'rejects', decision: null, error: 'async boom' },
      { gate: 'empty', decision: null, error: 'gate empty returned no decision' },
      { gate: 'last', decision: BLOCK },
    ]);
    expect(result.blockedBy).to.equal('last');
    for (const gate of ['throws', 'rejects', 'empty']) {
      expect(await metricValue(registry, 'quantum_govern_gate_error_total', { gate })).to.equal(1);
    }
    expect(lines.map((line) => [line.gate, line.planId])).to.deep.equal([
      ['throws', request.planId],
      ['rejects', request.planId],
      ['empty', request.planId],
    ]);
    expect(lines[0]).to.include({ symbol: 'ETHUSDT', err: 'sync boom' });
  });

  it('allows a plan when a throwing gate is the only gate', async () => {
    const registry = new Registry();
    const pipeline = new PermitPipeline([fakeGate('broken', () => Promise.reject(new Error('down'))).gate], { registry });
    expect((await pipeline.evaluate(plan())).allow).to.equal(true);
    expect(await metricValue(registry, 'quantum_govern_allow_total', { symbol: 'ETHUSDT' })).to.equal(1);
  });

  it('counts every malformed symbol under the one label "invalid"', async () => {
    const registry = new Registry();
    const pipeline = new PermitPipeline([fakeGate('g', () => ALLOW).gate], { registry });
    for (const symbol of ['BTC-USDT', 'X'.repeat(500), '', 'A B', 'btc usdt']) {
      await pipeline.evaluate(plan({ symbol }));
    }
    await pipeline.evaluate(null as unknown as PermitRequest);
    const series = (await registry.getSingleMetric('quantum_govern_allow_total')?.get())?.values ?? [];
    expect(series.map((value) => [value.labels.symbol, value.value])).to.deep.equal([['invalid', 6]]);
  });

  it('counts a lower-case symbol under its upper-case label (btcusdt is BTCUSDT)', async () => {
    const registry = new Registry();
    const pipeline = new PermitPipeline([fakeGate('g', () => ALLOW).gate], { registry });
    await pipeline.evaluate(plan({ symbol: 'btcusdt' }));
    expect(await metricValue(registry, 'quantum_govern_allow_total', { symbol: 'BTCUSDT' })).to.equal(1);
  });

  it('keeps its metrics on a private registry unless one is passed, and never on the global one', async () => {
    const pipeline = new PermitPipeline([fakeGate('g', () => ALLOW).gate]);
    await pipeline.evaluate(plan());
    expect(await metricValue(pipeline.registry, 'quantum_govern_allow_total', { symbol: 'ETHUSDT' })).to.equal(1);
    expect(globalRegistry.getSingleMetric('quantum_govern_allow_total')).to.equal(undefined);
    const shared = new Registry();
    await new PermitPipeline([fakeGate('a', () => ALLOW).gate], { registry: shared }).evaluate(plan());
    await new PermitPipeline([fakeGate('b', () => ALLOW).gate], { registry: shared }).evaluate(plan());
    expect(await metricValue(shared, 'quantum_govern_allow_total', { symbol: 'ETHUSDT' })).to.equal(2);
  });

  it('builds from a container with resolveAll(PERMIT_GATE), and allows with no gates registered', async () => {
    const root = globalContainer.createChildContainer();
    expect((await PermitPipeline.fromContainer(root).evaluate(plan())).allow).to.equal(true);
    root.register(PERMIT_GATE, { useValue: fakeGate('one', () => ALLOW).gate });
    root.register(PERMIT_GATE, { useValue: fakeGate('two', () => BLOCK).gate });
    const child = root.createChildContainer();
    const pipeline = PermitPipeline.fromContainer(child);
    expect(pipeline.gates.map((gate) => gate.name)).to.deep.equal(['one', 'two']);
    expect(await pipeline.evaluate(plan())).to.include({ allow: false, blockedBy: 'two' });
  });
});
