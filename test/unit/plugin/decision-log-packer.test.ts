import { expect } from 'chai';
import sinon from 'sinon';
import { captureDecision, DecisionLogEncoder } from '../../../plugin/decision-log-encoding';
import { DecisionPacker, PACK_BUDGET_MS } from '../../../plugin/decision-log-packer';
import type { GateDecision } from '../../../types/permit';
import { DEFAULT_POLICY, plan } from '../../support/gate-fixtures';

const decision: GateDecision = { allow: true, reason: 'within_budget', enforced: true, failOpen: false, mode: 'enforce', wouldBlock: false };
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('DecisionPacker', () => {
  let encoder: DecisionLogEncoder;
  let queue: string[];
  let packed: sinon.SinonSpy;
  let failed: sinon.SinonSpy;
  let packer: DecisionPacker;

  beforeEach(() => {
    encoder = new DecisionLogEncoder('gate-1', 'node', DEFAULT_POLICY);
    queue = [];
    packed = sinon.spy();
    failed = sinon.spy();
    packer = new DecisionPacker(encoder, queue, packed, failed);
  });

  afterEach(() => sinon.restore());

  it('packs nothing on the decision\'s path, and every taken decision, in order, once the caller has its answer', async () => {
    for (let i = 0; i < 3; i += 1) packer.add(captureDecision(plan({ planId: `p${i}` }), decision, 1_000 + i, false));
    expect(queue).to.have.length(0);
    expect(packer.length).to.equal(3);
    await nextTurn();
    expect(queue).to.have.length(3);
    expect(packer.length).to.equal(0);
    queue.forEach((entry, i) => expect(entry).to.include(`p${i}`));
    expect(packed.callCount).to.equal(1);
    expect(failed.callCount).to.equal(0);
  });

  it(`packs for at most ${PACK_BUDGET_MS} ms a turn, looked at every 16 entries, and the rest on the turns after`, async () => {
    // Each entry "takes" 0.1 ms on a stubbed clock: 16 entries pass the budget, so each turn packs 16.
    let nowMs = 0;
    sinon.stub(performance, 'now').callsFake(() => nowMs);
    const pack = encoder.pack.bind(encoder);
    sinon.stub(encoder, 'pack').callsFake((c) => {
      nowMs += 0.1;
      return pack(c);
    });
    for (let i = 0; i < 40; i += 1) packer.add(captureDecision(plan({ planId: `p${i}` }), decision, 1_000, false));
    await nextTurn();
    expect(queue).to.have.length(16);
    expect(packed.callCount).to.equal(1);
    await nextTurn();
    expect(queue).to.have.length(32);
    await nextTurn();
    expect(queue).to.have.length(40);
    expect(packer.length).to.equal(0);
    expect(packed.callCount).to.equal(3);
  });

  it('counts an entry that cannot be packed as failed, and packs the others', async () => {
    const pack = encoder.pack.bind(encoder);
    sinon.stub(encoder, 'pack').callsFake((c) => {
      if (c.plan?.planId === 'plan-bad') throw new Error('cannot pack');
      return pack(c);
    });
    for (const planId of ['plan-a', 'plan-bad', 'plan-b']) packer.add(captureDecision(plan({ planId }), decision, 1_000, false));
    await nextTurn();
    expect(failed.callCount).to.equal(1);
    expect(queue).to.have.length(2);
    expect(queue[0]).to.include('plan-a');
    expect(queue[1]).to.include('plan-b');
    expect(queue.join('\n')).not.to.include('plan-bad');
  });

  it('packs everything at once when the log closes, and leaves no turn scheduled', async () => {
    for (let i = 0; i < 100; i += 1) packer.add(captureDecision(plan({ planId: `p${i}` }), decision, 1_000, false));
    packer.packAll();
    expect(queue).to.have.length(100);
    expect(packer.length).to.equal(0);
    await nextTurn();
    expect(packed.callCount).to.equal(0);
  });
});
