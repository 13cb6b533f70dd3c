import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { RedisClient } from '../../../lib/redis/client';
import { RedisKeys } from '../../../lib/redis/keys';
import { BudgetGate } from '../../../plugin/budget-gate';
import type { BudgetGateOptions } from '../../../plugin/gate-options';
import type { PermitRequest } from '../../../types/permit';
import { readLoggedDecision } from '../../../types/decision-log-entry';
import { budgetFields } from '../../support/gate-fixtures';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';

const keys = new RedisKeys();
const KEY = keys.budget('ETHUSDT');
/** Long 2 ETH at 1000 against a budget of 1348: every BUY is over budget. */
const OVER = { position_amt: 2, position_notional_usd: 2000, over_budget_usd: 652 } as const;

let planCount = 0;
const buy = (qty = 0.1): PermitRequest => ({ planId: `buy-${(planCount += 1)}`, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty });

describe('A repeated block, confirmed with HMGET (real Redis)', function () {
  this.timeout(20000);
  const redis = useRedisServer();
  let admin: RedisClient;
  const gates: BudgetGate[] = [];
  const newGate = (options: BudgetGateOptions = {}): BudgetGate => {
    const gate = new BudgetGate({ redisUrl: redis.server.url, registry: new Registry(), timeoutMs: 2000, decisionLogMaxLen: 0, ...options });
    gates.push(gate);
    return gate;
  };

  /**
   * Script calls and HMGETs sent by the gate since the last `CONFIG RESETSTAT`. Redis counts the
   * HMGET each script call runs as an HMGET too: those are taken off.
   */
  async function calls(): Promise<{ evalsha: number; hmget: number }> {
    const info = await admin.info('commandstats');
    const count = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
    const scripts = count('evalsha') + count('eval');
    return { evalsha: scripts, hmget: count('hmget') - scripts };
  }

  before(async () => {
    admin = await connectedClient(redis.server);
  });
  beforeEach(async () => {
    await admin.flushall();
    await admin.hset(KEY, budgetFields(OVER));
  });
  afterEach(async () => {
    await Promise.all(gates.splice(0).map((gate) => gate.close()));
  });
  after(() => admin.disconnect());

  it('judges the first plan with the script, and the next plans on that symbol with one HMGET each, blocking as the script does', async () => {
    const gate = newGate();
    await gate.ready();
    await admin.config('RESETSTAT');
    const first = await gate.evaluate(buy());
    expect(first).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget', source: 'redis' });
    expect(await calls()).to.deep.equal({ evalsha: 1, hmget: 0 });
    for (let i = 0; i < 5; i++) {
      const again = await gate.evaluate(buy());
      // The same decision, numbers and all: the script's reply for a hash with no reservations.
      expect(again).to.deep.equal(first);
    }
    expect(await calls()).to.deep.equal({ evalsha: 1, hmget: 5 });
  });

  it('judges each repeated block on the values it read: one changed field (mode, budget) changes the decision, unchanged ones give the same', async () => {
    const gate = newGate();
    await gate.ready();
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation', mode: 'enforce' });
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation', mode: 'enforce' });
    await admin.config('RESETSTAT');
    await admin.hset(KEY, 'mode', 'shadow');
    expect(await gate.evaluate(buy())).to.include({ allow: true, reason: 'shadow_would_block', mode: 'shadow' });
    await admin.hset(KEY, 'mode', 'enforce');
    expect(await gate.evaluate(buy())).to.include({ allow: false, reason: 'p28_budget_violation', mode: 'enforce', budgetUsd: 1348 });
    await admin.hset(KEY, 'budget_usd', '1500');
    expect(await gate.evaluate(buy())).to.include({ allow: false, reason: 'p28_budget_violation', budgetUsd: 1500 });
    expect(await gate.evaluate(buy())).to.include({ allow: false, reason: 'p28_budget_violation', budgetUsd: 1500 });
    // Every one of them confirmed by HMGET alone.
    expect(await calls()).to.deep.equal({ evalsha: 0, hmget: 4 });
  });

  it('goes back to the script, and reserves, once the symbol has room again', async () => {
    const gate = newGate();
    await gate.ready();
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation' });
    // The position was cut to 1 ETH: 348 USD of room.
    await admin.hset(KEY, budgetFields());
    await admin.config('RESETSTAT');
    const plan = buy(0.2);
    expect(await gate.evaluate(plan)).to.include({ allow: true, reason: 'within_budget', reservedUsd: 0, projectedNotionalUsd: 1200 });
    expect(await calls()).to.deep.equal({ evalsha: 1, hmget: 1 });
    expect(Object.keys(JSON.parse((await admin.hget(KEY, 'reservations'))!) as object)).to.deep.equal([plan.planId]);
    // Forgotten as a blocked symbol: the next plan goes straight to the script, and counts the first one's reservation.
    expect(await gate.evaluate(buy(0.2))).to.include({ allow: false, reason: 'p28_budget_violation', reservedUsd: 200, projectedNotionalUsd: 1400 });
    expect(await calls()).to.deep.equal({ evalsha: 2, hmget: 1 });
  });

  it('leaves a hash holding reservations to the script, which judges their expiry on the Redis clock', async () => {
    const gate = newGate();
    await gate.ready();
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation', reservedUsd: 0 });
    const [sec] = await admin.time();
    await admin.hset(KEY, 'reservations', JSON.stringify({ other: ['100', Number(sec) * 1000 + 60_000] }));
    await admin.config('RESETSTAT');
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation', reservedUsd: 100, projectedNotionalUsd: 2200 });
    expect(await calls()).to.deep.equal({ evalsha: 1, hmget: 1 });
  });

  it('fails open as the script does when the key holds another type, and when Redis cannot answer in time', async () => {
    const gate = newGate({ timeoutMs: 200 });
    await gate.ready();
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation' });
    await admin.del(KEY);
    await admin.set(KEY, 'not a hash');
    expect(await gate.evaluate(buy())).to.include({ allow: true, failOpen: true, reason: 'invalid_budget_data', detail: 'wrong_type' });
    await admin.del(KEY);
    await admin.hset(KEY, budgetFields(OVER));
    expect(await gate.evaluate(buy())).to.include({ reason: 'p28_budget_violation' });
    redis.server.pause();
    try {
      expect(await gate.evaluate(buy())).to.include({ allow: true, failOpen: true, reason: 'timeout' });
    } finally {
      redis.server.resume();
    }
  });

  it('logs a confirmed block with the hash it was judged on', async () => {
    const gate = newGate({ decisionLogMaxLen: 1000, instanceId: 'repeat' });
    await gate.ready();
    await gate.evaluate(buy());
    const plan = buy();
    await gate.evaluate(plan);
    await eventually(async () => (await admin.xlen(keys.decisionLogStream)) === 2);
    const entries = (await admin.xrange(keys.decisionLogStream, '-', '+')) as Array<[string, string[]]>;
    const logged = entries.map(([id, fields]) => readLoggedDecision(id, fields)!).find((d) => d.planId === plan.planId)!;
    expect(logged).to.include({ reason: 'p28_budget_violation', symbol: 'ETHUSDT' });
    expect(logged.hash).to.include({ budget_usd: '1348', position_notional_usd: '2000' });
  });

  it('is not used beside a local cache, which answers a repeated block without a round trip', async () => {
    const gate = newGate({ localCache: true });
    await gate.ready();
    await gate.evaluate(buy());
    await admin.config('RESETSTAT');
    await gate.evaluate(buy());
    expect((await calls()).hmget).to.equal(0);
  });
});
