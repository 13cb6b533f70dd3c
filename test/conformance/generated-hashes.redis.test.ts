import { expect } from 'chai';
import type { RedisClient } from '../../lib/redis/client';
import { RedisKeys } from '../../lib/redis/keys';
import { withScripts } from '../../lib/redis/lua-scripts';
import { liveReservations, RESERVATIONS_FIELD } from '../../lib/redis/reservations';
import { decideFromBudgetFields, isClosingRequest } from '../../plugin/decide';
import { decisionFromPlanReply, planScriptArgs } from '../../plugin/plan-script';
import { budgetFixture } from '../../dev/budget-fixture';
import { encodeBudgetHash } from '../../types/budget-hash';
import { readPermitRequest, type GateDecision, type PermitRequest } from '../../types/permit';
import { DEFAULT_POLICY } from '../support/gate-fixtures';
import { connectedClient, useRedisServer } from '../support/redis';

/**
 * The decision script (`decide-plan-1.lua`, what every gate calls) and the in-process decision
 * (`plugin/decide.ts`, what the local cache, the confirming read of a repeated block and replay
 * use) against each other on thousands of generated budget hashes and plans: valid ones, and
 * every kind of bad value a writer other than the worker could leave in a field (hex, inf, nan,
 * blanks, NUL bytes, overlong numbers, out-of-bounds values, missing fields). The vectors pin the
 * cases someone thought of; this finds the ones nobody did. A fixed seed per run, so a failure
 * is reproduced by running the test again; the report shows the hash and the plan.
 */

const SYMBOL = 'ETHUSDT';
const keys = new RedisKeys();
const NOW_MS = 1_765_000_000_000;
const NOW_SEC = NOW_MS / 1000;

/** mulberry32: a small seeded generator, so that every run checks the same cases. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Numbers and non-numbers a field can hold: bounds, signs, forms a parser may or may not take. */
const NUMBERISH = [
  '0', '-0', '1', '0.5', '0.999999', '1.0000001', '2', '1348', '50000', '-1', '-5', ' 7 ', '\t8\n', '+5', '.5', '5.',
  '1e5', '1E2', '00012', '1e-400', '1e309', '-1e309', '1.7976931348623157e308', '0x10', '0X1A', '0x1p4', 'inf', '-inf',
  'nan', 'NaN', 'Infinity', 'INF', '', ' ', 'abc', '5abc', '5\u0000', '5\u00009', '\u00005', '9'.repeat(70),
  `1${'0'.repeat(63)}`, `1${'0'.repeat(64)}`, '3 4', '١٢',
];
const FIELDS_NUMERIC = [
  'budget_usd', 'stress_factor', 'equity_usd', 'portfolio_heat', 'cluster_stress', 'vol_regime', 'timestamp', 'base_risk_pct',
  'position_amt', 'position_notional_usd', 'over_budget_usd', 'last_violation_ts', 'position_price',
];
const OPTIONAL = ['position_amt', 'position_notional_usd', 'over_budget_usd', 'last_violation_ts', 'position_price', 'position_status'];
const MODES = ['shadow', 'enforce', 'SHADOW', '', 'shadow ', 'off', '\u0000shadow'];
const SYMBOLS = [SYMBOL, 'ethusdt', 'BTCUSDT', 'ETH-USDT', '', `${SYMBOL} `, 'E'.repeat(33), `${SYMBOL}\u0000`];
const STATUSES = ['ok', 'invalid', 'stale', 'unknown', 'OK', '', 'other'];
/** Ages around the policy's limits: fresh, just stale, in the future past the allowed skew. */
const TIMESTAMPS = [NOW_SEC, NOW_SEC - 1, NOW_SEC - DEFAULT_POLICY.staleAfterMs / 1000 - 1, NOW_SEC - DEFAULT_POLICY.staleAfterMs / 1000 + 1, NOW_SEC + DEFAULT_POLICY.maxClockSkewMs / 1000 + 1, NOW_SEC + 1].map(String);
const VIOLATIONS = [NOW_SEC - 1, NOW_SEC - DEFAULT_POLICY.violationWindowMs / 1000 - 1, NOW_SEC + DEFAULT_POLICY.maxClockSkewMs / 1000 + 5].map(String);

function pick<T>(random: () => number, from: readonly T[]): T {
  return from[Math.floor(random() * from.length)]!;
}

function generatedHash(random: () => number): Record<string, string> {
  const fields = encodeBudgetHash(budgetFixture({
    symbol: SYMBOL,
    mode: random() < 0.5 ? 'enforce' : 'shadow',
    timestamp: NOW_SEC,
    budget_usd: Number(pick(random, ['1348', '50000', '60000', '100', '0', '1e12'])),
    position_amt: Number(pick(random, ['0.5', '-0.5', '0', '2', '-3'])),
    position_price: Number(pick(random, ['100000', '1000', '0.5'])),
  }));
  fields.position_notional_usd = String(Math.abs(Number(fields.position_amt)) * Number(fields.position_price));
  fields.last_violation_ts = pick(random, VIOLATIONS);
  if (random() < 0.5) fields.position_status = pick(random, ['ok', 'stale']);
  // The upstream service's 10-field hash has no position fields at all.
  if (random() < 0.1) for (const name of OPTIONAL) delete fields[name];
  for (const name of OPTIONAL) if (random() < 0.15) delete fields[name];
  const changes = Math.floor(random() * 4);
  for (let i = 0; i < changes; i += 1) {
    const which = random();
    if (which < 0.08) fields.mode = pick(random, MODES);
    else if (which < 0.14) fields.symbol = pick(random, SYMBOLS);
    else if (which < 0.2) fields.position_status = pick(random, STATUSES);
    else if (which < 0.3) fields.timestamp = pick(random, TIMESTAMPS);
    else fields[pick(random, FIELDS_NUMERIC)] = pick(random, NUMBERISH);
  }
  return fields;
}

function generatedPlan(random: () => number): PermitRequest | undefined {
  const req: Record<string, unknown> = { planId: 'generated', symbol: SYMBOL, action: 'OPEN' };
  const side = pick(random, ['BUY', 'SELL', undefined]);
  const qty = pick(random, [undefined, 0.1, 0.5, 1, 3, 1e-9, 0.30000000000000004]);
  const notionalUsd = pick(random, [undefined, 100, 1000, 50000, 1e12, 0.1]);
  if (side !== undefined) req.side = side;
  if (qty !== undefined) req.qty = qty;
  if (notionalUsd !== undefined) req.notionalUsd = notionalUsd;
  const plan = readPermitRequest(req);
  return plan === undefined || isClosingRequest(plan) ? undefined : plan;
}

/** The fields both sides give; `source` is the gate's, not the decision's. */
function shown(decision: GateDecision): Record<string, unknown> {
  const { source: _source, ...rest } = decision;
  return rest;
}

describe('the decision script and the in-process decision agree on generated hashes and plans', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;
  before(async () => {
    client = await connectedClient(redis.server, 'gate', 5000);
  });
  after(() => client.disconnect());

  it('give the same decision for 4,000 generated hashes and plans, bad values included', async () => {
    const random = generator(0x5eed28);
    const script = withScripts(client);
    const key = keys.budget(SYMBOL);
    const differences: string[] = [];
    const reasons = new Map<string, number>();
    let judged = 0;
    while (judged < 4000) {
      const plan = generatedPlan(random);
      const fields = generatedHash(random);
      const policy = { ...DEFAULT_POLICY, forceShadow: random() < 0.15 };
      if (plan === undefined) continue;
      judged += 1;
      await client.multi().del(key).hset(key, fields).exec();
      // Reservations off (TTL 0): the script writes nothing, and with none stored both count 0 reserved.
      const fromScript = shown(decisionFromPlanReply(await script.p28DecidePlan(key, ...planScriptArgs(plan, NOW_MS, policy, 0, false))));
      const inProcess = shown(decideFromBudgetFields(plan, fields, NOW_MS, policy, 0));
      reasons.set(fromScript.reason as string, (reasons.get(fromScript.reason as string) ?? 0) + 1);
      try {
        expect(fromScript).to.deep.equal(inProcess);
      } catch {
        differences.push(JSON.stringify({ fields, plan, forceShadow: policy.forceShadow, script: fromScript, inProcess }));
      }
    }
    expect(differences.slice(0, 5), `${differences.length} of ${judged} differ`).to.deep.equal([]);
    // The generator reaches every reason a hash can give, so the agreement means something.
    expect([...reasons.keys()].sort()).to.deep.equal(['invalid_budget_data', 'invalid_request', 'p28_budget_violation', 'reduce_only', 'shadow_would_block', 'stale_budget_data', 'within_budget']);
  });

  it('count the same live reservations as GET /v1/budgets for 2,000 generated reservation fields', async () => {
    const random = generator(0xfee128);
    const script = withScripts(client);
    const key = keys.budget(SYMBOL);
    const fields = encodeBudgetHash(budgetFixture({ symbol: SYMBOL, mode: 'enforce', timestamp: NOW_SEC, budget_usd: 1e15, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 }));
    delete fields.last_violation_ts;
    const plan = readPermitRequest({ planId: 'generated', symbol: SYMBOL, action: 'OPEN', side: 'BUY', notionalUsd: 1 })!;
    const [sec] = await client.time();
    const redisNowMs = Number(sec) * 1000;
    // Amounts whose sums are exact in any order: the script and the listing add them in different orders.
    const amounts: unknown[] = ['100', '0.5', '2.25', '1e3', '-0', '0', '-1', '0x10', 'nan', 'inf', '1e309', ' 5 ', '5\u0000', '', 'abc', 7, null, '8'.repeat(70)];
    const expiries: unknown[] = [redisNowMs + 3_600_000, redisNowMs - 3_600_000, String(redisNowMs + 3_600_000), null, true, 1e300, -1e300];
    const differences: string[] = [];
    let counted = 0;
    for (let i = 0; i < 2000; i += 1) {
      const entries: Record<string, unknown> = {};
      const n = Math.floor(random() * 7);
      for (let e = 0; e < n; e += 1) {
        const shape = random();
        const id = `plan-${e}`;
        if (shape < 0.85) entries[id] = [pick(random, amounts), pick(random, expiries)];
        else if (shape < 0.9) entries[id] = pick(random, amounts);
        else if (shape < 0.95) entries[id] = { 1: pick(random, amounts), 2: pick(random, expiries) };
        else entries[id] = [pick(random, amounts)];
      }
      let stored = JSON.stringify(entries);
      const form = random();
      if (form < 0.05) stored = JSON.stringify(Object.values(entries));
      else if (form < 0.08) stored = `${stored}\u0000${JSON.stringify({ hidden: ['100', redisNowMs + 3_600_000] })}`;
      else if (form < 0.1) stored = stored.slice(0, -1);
      else if (form < 0.12) stored = pick(random, ['null', '"text"', '12', '[]', '{}', '']);
      await client.multi().del(key).hset(key, { ...fields, [RESERVATIONS_FIELD]: stored }).exec();
      const reply = await script.p28DecidePlan(key, ...planScriptArgs(plan, NOW_MS, DEFAULT_POLICY, 0, false));
      const listed = liveReservations(stored, redisNowMs);
      if (listed.reservations > 0) counted += 1;
      if (reply[0] !== 'within_budget' || Number(reply[6]) !== listed.reservedUsd) {
        differences.push(JSON.stringify({ stored, script: reply.slice(0, 7), listed }));
      }
    }
    expect(differences.slice(0, 5), `${differences.length} differ`).to.deep.equal([]);
    expect(counted, 'fields holding at least one live reservation').to.be.greaterThan(400);
  });
});
