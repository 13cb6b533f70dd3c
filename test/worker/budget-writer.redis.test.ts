import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { BudgetHash } from '../../types/budget-hash';
import { BudgetWriter } from '../../lib/worker/budget-writer';
import { RedisKeys } from '../../lib/redis/keys';
import type { RedisClient } from '../../lib/redis/client';
import { connectedClient, eventually, useRedisServer } from '../support/redis';
import { budgetFixture } from '../support/budget-fixture';

const record = (overrides: Partial<BudgetHash> = {}): BudgetHash =>
  budgetFixture({ timestamp: 1769553243, last_violation_ts: 1769553243, ...overrides });

describe('BudgetWriter', () => {
  const redis = useRedisServer();
  let client: RedisClient;
  let writer: BudgetWriter;

  before(async () => {
    client = await connectedClient(redis.server);
    writer = new BudgetWriter({ client, keys: new RedisKeys(), ttlSec: 60, violationStreamMaxLen: 1000 });
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());

  it('writes each hash with one script call: HDEL of stale optional fields, HSET, EXPIRE, atomically', async () => {
    const monitor = (await (client as Redis).monitor()) as unknown as NodeJS.EventEmitter & { disconnect(): void };
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(`${args[0]!.toLowerCase()} ${args[1] ?? ''}`.trim()));
    try {
      const result = await writer.write([{ record: record({ position_price: undefined, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0, last_violation_ts: undefined }) }]);
      expect(result).to.deep.equal({ written: ['BTCUSDT'], published: [], failures: [] });
      await eventually(() => seen.some((s) => s.startsWith('expire')));
    } finally {
      monitor.disconnect();
    }
    // One EVALSHA (or EVAL, the first time the script meets this server), and inside it:
    expect(seen.filter((s) => /^eval(sha)? /.test(s))).to.have.length(1);
    expect(seen.filter((s) => !/^(eval|evalsha|script) /.test(s))).to.deep.equal([
      'hdel quantum:portfolio:budget:BTCUSDT',
      'hset quantum:portfolio:budget:BTCUSDT',
      'expire quantum:portfolio:budget:BTCUSDT',
    ]);
    expect(await client.ttl('quantum:portfolio:budget:BTCUSDT')).to.be.within(1, 60);
  });

  it('removes position_price when it no longer applies but never last_violation_ts', async () => {
    await writer.write([{ record: record() }]);
    await writer.write([{ record: record({ position_price: undefined, last_violation_ts: undefined, over_budget_usd: 0 }) }]);
    const hash = await client.hgetall('quantum:portfolio:budget:BTCUSDT');
    expect(hash).to.not.have.property('position_price');
    expect(hash.last_violation_ts).to.equal('1769553243');
    expect(await client.ttl('quantum:portfolio:budget:BTCUSDT')).to.be.within(1, 60);
  });

  it('appends a violation with its json field to the stream', async () => {
    const result = await writer.write([
      {
        record: record(),
        violation: { event_type: 'budget.violation', symbol: 'BTCUSDT', position_notional: 50000, budget_usd: 1348, over_budget: 48652, mode: 'shadow', timestamp: 1769553243 },
      },
    ]);
    expect(result.published).to.deep.equal(['BTCUSDT']);
    const entries = await client.xrange('quantum:stream:budget.violation', '-', '+');
    expect(entries).to.have.length(1);
    expect(entries[0]![1]).to.include.members(['over_budget', '48652', 'json']);
  });

  for (const [name, bad] of [
    ['a NaN budget', { budget_usd: Number.NaN }],
    ['a negative budget', { budget_usd: -1 }],
    ['a stress factor above 1', { stress_factor: 1.5 }],
    ['an infinite notional', { position_notional_usd: Number.POSITIVE_INFINITY }],
  ] as const) {
    it(`refuses to write a record with ${name}, and reports it`, async () => {
      const result = await writer.write([{ record: record(bad) }, { record: record({ symbol: 'ETHUSDT' }) }]);
      expect(result.written).to.deep.equal(['ETHUSDT']);
      expect(result.failures).to.have.length(1);
      expect(result.failures[0]!.target).to.equal('BTCUSDT');
      expect(await client.exists('quantum:portfolio:budget:BTCUSDT')).to.equal(0);
    });
  }
});
