import { expect } from 'chai';
import type { Redis } from 'ioredis';
import fc from 'fast-check';
import { encodeBudgetHash, type BudgetHash } from '../../../types/budget-hash';
import { BUDGET_WRITER_DEFAULTS, BudgetWriter } from '../../../lib/worker/budget-writer';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { budgetFixture } from '../../support/budget-fixture';

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

  /** Commands the server receives while `run` runs, as `name key`, MULTI and EXEC included. */
  async function monitored(run: () => Promise<unknown>): Promise<string[]> {
    const monitor = (await (client as Redis).monitor()) as unknown as NodeJS.EventEmitter & { disconnect(): void };
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(`${args[0]!.toLowerCase()} ${args[1] ?? ''}`.trim()));
    try {
      await run();
      await client.ping('end');
      await eventually(() => seen.includes('ping end'));
    } finally {
      monitor.disconnect();
    }
    return seen.filter((s) => s !== 'ping end');
  }

  const flat = (overrides: Partial<BudgetHash> = {}) =>
    record({ position_price: undefined, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0, last_violation_ts: undefined, ...overrides });
  const KEY = 'quantum:portfolio:budget:BTCUSDT';

  it('writes each hash with HSET and EXPIRE in one MULTI/EXEC, without a script', async () => {
    let result: Awaited<ReturnType<BudgetWriter['write']>> | undefined;
    // Every optional field present: nothing to delete, even for a writer that knows nothing yet.
    const seen = await monitored(async () => {
      result = await writer.write([{ record: record({ position_status: 'ok' }) }]);
    });
    expect(result).to.deep.equal({ written: ['BTCUSDT'], published: [], failures: [], fenced: [] });
    expect(seen).to.deep.equal(['multi', `hset ${KEY}`, `expire ${KEY}`, 'exec']);
    expect(await client.ttl(KEY)).to.be.within(1, 60);
  });

  it('writes the hashes of many symbols in shared MULTI/EXEC blocks, violations or not', async () => {
    const symbols = Array.from({ length: 250 }, (_, i) => `S${i}USDT`);
    const violation = (symbol: string) =>
      ({ event_type: 'budget.violation', symbol, position_notional: 50000, budget_usd: 1348, over_budget: 48652, mode: 'shadow', timestamp: 1769553243 }) as const;
    let result: Awaited<ReturnType<BudgetWriter['write']>> | undefined;
    const seen = await monitored(async () => {
      result = await writer.write(symbols.map((symbol) => ({ record: record({ symbol }), violation: violation(symbol) })));
    });
    expect(result!.written).to.deep.equal(symbols);
    expect(result!.published).to.deep.equal(symbols);
    expect(seen.filter((s) => s.startsWith('xadd'))).to.have.length(250);
    const blocks = seen.filter((s) => s === 'multi').length;
    expect(blocks).to.be.within(2, 10);
    expect(seen.filter((s) => s === 'exec')).to.have.length(blocks);
    expect(seen.filter((s) => /^(eval|evalsha) /.test(s))).to.deep.equal([]);
    for (const symbol of [symbols[0]!, symbols[249]!]) {
      expect(await client.ttl(`quantum:portfolio:budget:${symbol}`)).to.be.within(1, 60);
    }
  });

  it('removes position_price when it no longer applies but never last_violation_ts, in the same transaction', async () => {
    await writer.write([{ record: record() }]);
    const seen = await monitored(() => writer.write([{ record: flat() }]));
    expect(seen).to.deep.equal(['multi', `hdel ${KEY}`, `hset ${KEY}`, `expire ${KEY}`, 'exec']);
    const hash = await client.hgetall(KEY);
    expect(hash).to.not.have.property('position_price');
    expect(hash.last_violation_ts).to.equal('1769553243');
    expect(hash.position_amt).to.equal('0');
    expect(await client.ttl(KEY)).to.be.within(1, 60);
  });

  describe('knowing which fields a hash holds', () => {
    it('sends no HDEL for a field its own last write left out', async () => {
      await writer.write([{ record: flat() }]);
      const seen = await monitored(() => writer.write([{ record: flat() }]));
      expect(seen).to.deep.equal(['multi', `hset ${KEY}`, `expire ${KEY}`, 'exec']);
    });

    it('removes a field written before it started (it knows nothing of the hash yet)', async () => {
      await new BudgetWriter({ client, keys: new RedisKeys(), ttlSec: 60, violationStreamMaxLen: 1000 }).write([{ record: record() }]);
      const fresh = new BudgetWriter({ client, keys: new RedisKeys(), ttlSec: 60, violationStreamMaxLen: 1000 });
      await fresh.write([{ record: flat() }]);
      expect(await client.hexists(KEY, 'position_price')).to.equal(0);
    });

    it('removes a field another replica wrote while it did not hold the lease (new lease term)', async () => {
      let term = 1;
      const a = new BudgetWriter({ client, keys: new RedisKeys(), ttlSec: 60, violationStreamMaxLen: 1000, leaseTerm: () => term });
      const b = new BudgetWriter({ client, keys: new RedisKeys(), ttlSec: 60, violationStreamMaxLen: 1000, leaseTerm: () => 1 });
      await a.write([{ record: flat() }]);
      await b.write([{ record: record() }]);
      term = 2;
      await a.write([{ record: flat() }]);
      expect(await client.hexists(KEY, 'position_price')).to.equal(0);
    });

    it('removes a field of a write whose outcome it never learned (timed out, applied later)', async function () {
      this.timeout(10000);
      const w = new BudgetWriter({ client, keys: new RedisKeys(), ttlSec: 60, violationStreamMaxLen: 1000, batch: { baseTimeoutMs: 100, perCommandMs: 0 } });
      await w.write([{ record: flat() }]);
      redis.server.pause();
      let failed: unknown;
      try {
        await w.write([{ record: record() }]);
      } catch (error) {
        failed = error;
      } finally {
        redis.server.resume();
      }
      expect((failed as Error | undefined)?.message).to.match(/timed out/);
      await eventually(async () => (await client.hexists(KEY, 'position_price')) === 1);
      await w.write([{ record: flat() }]);
      expect(await client.hexists(KEY, 'position_price')).to.equal(0);
    });

    it('removes a field written behind its back within fullClearEveryWrites writes', async () => {
      await writer.write([{ record: flat() }]);
      await client.hset(KEY, 'position_price', '99');
      for (let i = 0; i < BUDGET_WRITER_DEFAULTS.fullClearEveryWrites; i++) await writer.write([{ record: flat() }]);
      expect(await client.hexists(KEY, 'position_price')).to.equal(0);
    });

    it('leaves exactly the fields of the latest record (and the latest last_violation_ts) whatever the sequence of cycles, replicas and failures, for every optional field', async function () {
      this.timeout(60000);
      const keys = new RedisKeys();
      const symbols = ['AUSDT', 'BUSDT', 'CUSDT'];
      const cycle = fc.record({
        replica: fc.constantFrom(0, 1),
        records: fc.tuple(...symbols.map(() => fc.record({ priced: fc.boolean(), violation: fc.boolean(), status: fc.constantFrom(undefined, 'ok', 'invalid') as fc.Arbitrary<BudgetHash['position_status']> }))),
        /** A symbol whose key holds a string during the write, so Redis refuses it; -1: none. */
        refused: fc.integer({ min: -3, max: symbols.length - 1 }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(cycle, { minLength: 1, maxLength: 30 }), async (cycles) => {
          await client.flushall();
          const terms = [0, 0];
          let leader = -1;
          const writers = [0, 1].map((r) => new BudgetWriter({ client, keys, ttlSec: 60, violationStreamMaxLen: 1000, leaseTerm: () => terms[r]! }));
          const expected = new Map<string, Record<string, string>>();
          let ts = 1769553000;
          for (const c of cycles) {
            if (c.replica !== leader) {
              leader = c.replica;
              terms[leader]! += 1;
            }
            ts += 5;
            const refused = symbols[c.refused];
            if (refused) {
              await client.del(keys.budget(refused));
              await client.set(keys.budget(refused), 'not a hash');
            }
            const records = symbols.map((symbol, i) => {
              const { priced, violation, status } = c.records[i]!;
              const rec = priced ? record({ symbol, timestamp: ts, last_violation_ts: undefined }) : flat({ symbol, timestamp: ts });
              if (violation) rec.last_violation_ts = ts;
              if (status !== undefined) rec.position_status = status;
              return rec;
            });
            const result = await writers[leader]!.write(records.map((rec) => ({ record: rec })));
            expect(result.failures.map((f) => f.target)).to.deep.equal(refused ? [refused] : []);
            if (refused) {
              await client.del(keys.budget(refused));
              expected.delete(refused);
            }
            for (const rec of records) {
              if (rec.symbol === refused) continue;
              const previous = expected.get(rec.symbol);
              const want = encodeBudgetHash(rec);
              if (want.last_violation_ts === undefined && previous?.last_violation_ts !== undefined) want.last_violation_ts = previous.last_violation_ts;
              expected.set(rec.symbol, want);
              expect(await client.hgetall(keys.budget(rec.symbol)), rec.symbol).to.deep.equal(want);
            }
          }
        }),
        { numRuns: 40 },
      );
    });
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
