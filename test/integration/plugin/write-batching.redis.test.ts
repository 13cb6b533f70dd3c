import { expect } from 'chai';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import type { RedisClient } from '../../../lib/redis/client';
import { RedisKeys } from '../../../lib/redis/keys';
import { liveReservations } from '../../../lib/redis/reservations';
import { BudgetGate } from '../../../plugin/budget-gate';
import type { PermitRequest } from '../../../types/permit';
import { budgetFields } from '../../support/gate-fixtures';
import { connectedClient, useRedisServer } from '../../support/redis';

const keys = new RedisKeys();
const KEY = keys.budget('ETHUSDT');

type Chunk = string | Buffer;
type SocketWrites = Duplex & {
  _write(chunk: Chunk, encoding: BufferEncoding, cb: (error?: Error | null) => void): void;
  _writev(chunks: Array<{ chunk: Chunk }>, cb: (error?: Error | null) => void): void;
};

/**
 * Records every write the client's socket makes to the kernel: for each, how many of the commands
 * in it name the budget key (the gate's reads). The socket's own `_write` / `_writev` are wrapped.
 */
function recordWrites(client: RedisClient): { writes: number[]; corks: () => number; restore: () => void } {
  const stream = (client as unknown as { stream: SocketWrites }).stream;
  const write = stream._write;
  const writev = stream._writev;
  const cork = stream.cork;
  const writes: number[] = [];
  let corks = 0;
  const reads = (chunks: Chunk[]) => chunks.filter((c) => String(c).includes(KEY)).length;
  stream._write = function (chunk, encoding, cb) {
    writes.push(reads([chunk]));
    return write.call(this, chunk, encoding, cb);
  };
  stream._writev = function (chunks, cb) {
    writes.push(reads(chunks.map((c) => c.chunk)));
    return writev.call(this, chunks, cb);
  };
  stream.cork = function () {
    corks += 1;
    return cork.call(this);
  };
  return {
    writes,
    corks: () => corks,
    restore: () => {
      delete (stream as Partial<SocketWrites>)._write;
      delete (stream as Partial<SocketWrites>)._writev;
      delete (stream as Partial<Duplex>).cork;
    },
  };
}

let counter = 0;
function open(): PermitRequest {
  counter += 1;
  return { planId: `batch-${counter}`, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 100 };
}

describe('Concurrent reads leave in one write (option batchConcurrentReads)', () => {
  const redis = useRedisServer();
  let admin: RedisClient;
  let client: RedisClient;
  const gates: BudgetGate[] = [];
  let recorder: ReturnType<typeof recordWrites> | undefined;

  before(async () => {
    admin = await connectedClient(redis.server);
    client = await connectedClient(redis.server, 'gate', 1000);
  });
  after(() => {
    admin.disconnect();
    client.disconnect();
  });
  beforeEach(async () => {
    await admin.flushall();
    await admin.hset(KEY, budgetFields({ mode: 'enforce', budget_usd: 1e9, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 }));
  });
  afterEach(async () => {
    recorder?.restore();
    recorder = undefined;
    await Promise.all(gates.splice(0).map((gate) => gate.close()));
  });

  async function gateOn(batchConcurrentReads?: boolean): Promise<BudgetGate> {
    const gate = new BudgetGate({ redis: client, registry: new Registry(), decisionLogMaxLen: 0, now: Date.now, ...(batchConcurrentReads === undefined ? {} : { batchConcurrentReads }) });
    gates.push(gate);
    // The script is loaded on the connection before anything is recorded.
    expect((await gate.evaluate(open())).reason).to.equal('within_budget');
    return gate;
  }

  it('sends the reads of 64 decisions made at once in at most three writes, and decides each as if alone', async () => {
    const gate = await gateOn();
    recorder = recordWrites(client);
    const plans = Array.from({ length: 64 }, open);
    const decisions = await Promise.all(plans.map((p) => gate.evaluate(p)));
    for (const d of decisions) expect([d.reason, d.failOpen]).to.deep.equal(['within_budget', false]);
    // Every plan reserved its 100 USD once: nothing was lost, doubled or reordered into a wrong decision.
    const live = liveReservations((await admin.hget(KEY, 'reservations')) ?? undefined, Date.now() + 1000);
    expect(live.reservations).to.equal(65);
    expect(live.reservedUsd).to.equal(6500);
    const reads = recorder.writes.filter((n) => n > 0);
    expect(reads.reduce((a, b) => a + b, 0)).to.equal(64);
    expect(reads.length, JSON.stringify(recorder.writes)).to.be.at.most(3);
  });

  it('writes each read on its own with the option off (what the option changes)', async () => {
    const gate = await gateOn(false);
    recorder = recordWrites(client);
    const decisions = await Promise.all(Array.from({ length: 64 }, () => gate.evaluate(open())));
    for (const d of decisions) expect(d.reason).to.equal('within_budget');
    expect(recorder.corks()).to.equal(0);
    expect(recorder.writes.filter((n) => n > 0).length, JSON.stringify(recorder.writes)).to.be.greaterThan(3);
  });

  it('writes a lone read at once: a serial caller never corks the socket', async () => {
    const gate = await gateOn();
    recorder = recordWrites(client);
    for (let i = 0; i < 20; i += 1) expect((await gate.evaluate(open())).reason).to.equal('within_budget');
    expect(recorder.corks()).to.equal(0);
    expect(recorder.writes.filter((n) => n > 0)).to.deep.equal(Array.from({ length: 20 }, () => 1));
  });
});
