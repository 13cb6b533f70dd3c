import { expect } from 'chai';
import sinon from 'sinon';
import { BudgetGate } from '../../../plugin/budget-gate';
import { joinedCopy } from '../../../plugin/known-fields-memo';
import { planScriptArgs, PLAN_REPLY_LENGTH, SAME_FIELDS } from '../../../plugin/plan-script';
import type { RedisClient } from '../../../lib/redis/client';
import { RedisKeys } from '../../../lib/redis/keys';
import { withScripts, type ScriptCommands } from '../../../lib/redis/lua-scripts';
import { unpackDecisionLogEntry } from '../../../types/decision-log-entry';
import { budgetFields, DEFAULT_POLICY, plan } from '../../support/gate-fixtures';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';

const keys = new RedisKeys();
const KEY = keys.budget('ETHUSDT');
/** Reply length with every known field appended. */
const WITH_FIELDS = PLAN_REPLY_LENGTH + 16;

/**
 * A gate with a decision log asks the decision script for the hash's known fields only when they
 * changed since its copy (ARGV[12] = '2', `plugin/known-fields-memo.ts`): the values travel once
 * per write of the hash, and every logged decision still carries the values it was judged on.
 */
describe('the gate\'s copy of the known fields for its decision log (real Redis)', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let admin: RedisClient;
  let scripts: RedisClient & ScriptCommands;

  before(async () => {
    admin = await connectedClient(redis.server);
    scripts = withScripts(admin);
  });
  after(() => admin.disconnect());
  beforeEach(() => admin.flushall());

  const decide = (fields: boolean | string, nowMs: number) => scripts.p28DecidePlan(KEY, ...planScriptArgs(plan({ qty: 0.1 }), nowMs, DEFAULT_POLICY, 0, fields));

  describe('the decision script', () => {
    it('appends the values when they differ from the copy it is given, and only "=" when they are the same', async () => {
      const nowMs = Date.now();
      await admin.hset(KEY, budgetFields({}, nowMs));
      const all = await decide(true, nowMs);
      expect(all).to.have.length(WITH_FIELDS);
      const copy = joinedCopy(all.slice(PLAN_REPLY_LENGTH))!;
      expect(copy, 'the worker\'s hash can be compared').to.be.a('string');

      const same = await decide(copy, nowMs);
      expect(same.slice(0, PLAN_REPLY_LENGTH), 'the same decision').to.deep.equal(all.slice(0, PLAN_REPLY_LENGTH));
      expect(same.slice(PLAN_REPLY_LENGTH)).to.deep.equal([SAME_FIELDS]);

      await admin.hset(KEY, 'equity_usd', '90000');
      const changed = await decide(copy, nowMs);
      expect(changed).to.have.length(WITH_FIELDS);
      expect(changed.slice(PLAN_REPLY_LENGTH)).to.include('90000');
    });

    it('never takes a missing field for an empty one, nor a value holding a NUL byte for two values', async () => {
      const nowMs = Date.now();
      await admin.hset(KEY, budgetFields({ position_status: 'ok' }, nowMs));
      const values = (await decide(true, nowMs)).slice(PLAN_REPLY_LENGTH);
      const copy = joinedCopy(values)!;
      // A stored '' where the copy has a value, and where the copy has none: both differ.
      const status = values.length - 1;
      expect(values[status], 'position_status is the last known field').to.not.equal(null);
      await admin.hset(KEY, 'position_status', '');
      expect(await decide(copy, nowMs)).to.have.length(WITH_FIELDS);
      const withoutStatus = joinedCopy([...values.slice(0, status), null])!;
      expect(await decide(withoutStatus, nowMs), 'stored "" against a missing field in the copy').to.have.length(WITH_FIELDS);
      // A NUL byte inside a stored value: the joined stored values can never equal a copy without one.
      await admin.hset(KEY, 'position_status', 'ok');
      expect(await decide(copy, nowMs)).to.have.length(PLAN_REPLY_LENGTH + 1);
      await admin.hset(KEY, 'mode', `enforce\u0000${values[8]}`);
      expect(await decide(copy, nowMs)).to.have.length(WITH_FIELDS);
    });

    it('gives a key that holds no hash the decision alone, whatever the copy', async () => {
      await admin.set(KEY, 'not a hash');
      const reply = await decide('a\u0000b', Date.now());
      expect(reply).to.have.length(PLAN_REPLY_LENGTH);
      expect(reply.slice(0, 2)).to.deep.equal(['invalid_budget_data', 'wrong_type']);
    });
  });

  describe('a gate with a decision log', () => {
    let gateClient: RedisClient & ScriptCommands;
    let gate: BudgetGate | undefined;
    beforeEach(async () => {
      gateClient = withScripts(await connectedClient(redis.server, 'gate', 1000));
    });
    afterEach(async () => {
      await gate?.close();
      gate = undefined;
      gateClient.disconnect();
      sinon.restore();
    });

    /** The inputs each logged decision carries, oldest first, once `count` are written. */
    async function loggedEquity(count: number): Promise<Array<string | undefined>> {
      await eventually(async () => (await admin.xlen(keys.decisionLogStream)) === count);
      const entries = (await admin.xrange(keys.decisionLogStream, '-', '+')) as Array<[string, string[]]>;
      return entries.map(([, fields]) => {
        const entry = unpackDecisionLogEntry(fields[1]!)!;
        return entry.equity_usd === '' ? undefined : entry.equity_usd;
      });
    }

    it('logs the values each decision was judged on, asking the script for them only when they changed', async () => {
      const nowMs = Date.now();
      await admin.hset(KEY, budgetFields({}, nowMs));
      const calls = sinon.spy(gateClient, 'p28DecidePlan');
      gate = new BudgetGate({ redis: gateClient, now: () => nowMs, reservationTtlMs: 0 });
      await gate.ready();
      const replyLengths = async () => Promise.all(calls.returnValues.map(async (reply) => (await reply).length));

      expect((await gate.evaluate(plan({ planId: 'p1', qty: 0.1 }))).reason).to.equal('within_budget');
      expect((await gate.evaluate(plan({ planId: 'p2', qty: 0.1 }))).reason).to.equal('within_budget');
      // The worker writes again: another equity.
      await admin.hset(KEY, budgetFields({ equity_usd: 90000 }, nowMs));
      await gate.evaluate(plan({ planId: 'p3', qty: 0.1 }));
      await gate.evaluate(plan({ planId: 'p4', qty: 0.1 }));

      expect(await replyLengths(), 'values on the first call and after the write, "=" otherwise').to.deep.equal([WITH_FIELDS, PLAN_REPLY_LENGTH + 1, WITH_FIELDS, PLAN_REPLY_LENGTH + 1]);
      expect(await loggedEquity(4)).to.deep.equal(['100000', '100000', '90000', '90000']);
    });

    it('logs no values, never the copy\'s, for a key that holds no hash or no longer exists', async () => {
      const nowMs = Date.now();
      await admin.hset(KEY, budgetFields({}, nowMs));
      gate = new BudgetGate({ redis: gateClient, now: () => nowMs, reservationTtlMs: 0 });
      await gate.ready();
      await gate.evaluate(plan({ planId: 'p1', qty: 0.1 }));
      await admin.set(KEY, 'not a hash');
      const wrongType = await gate.evaluate(plan({ planId: 'p2', qty: 0.1 }));
      await admin.del(KEY);
      const missing = await gate.evaluate(plan({ planId: 'p3', qty: 0.1 }));
      expect([wrongType.detail, missing.reason]).to.deep.equal(['wrong_type', 'no_budget_data']);
      expect(await loggedEquity(3)).to.deep.equal(['100000', undefined, undefined]);
    });
  });
});
