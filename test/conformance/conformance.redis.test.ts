import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { RedisClient } from '../../lib/redis/client';
import { startHttpServer } from '../../lib/worker/http-server';
import { BudgetGate } from '../../plugin/budget-gate';
import { BUDGET_HASH_FIELDS } from '../../types/budget-hash';
import { decideFromBudgetFields, isClosingRequest } from '../../plugin/decide';
import { confirmedBlock, readHash, REPEAT_BLOCK_FIELDS } from '../../plugin/repeat-block';
import { RESERVATIONS_FIELD } from '../../lib/redis/reservations';
import { FAIL_OPEN_REASONS, GateReason, readPermitRequest } from '../../types/permit';
import { DEFAULT_POLICY } from '../support/gate-fixtures';
import { freePort } from '../support/local-redis-server';
import { connectedClient, useRedisServer } from '../support/redis';
import { comparable, loadVectors, reservedPlans, seedVector, type Vector } from './vectors';

const vectors = loadVectors();

/** A gate for one vector: its options, its clock; an unreachable one for `fault: unreachable`. */
async function gateFor(vector: Vector, client: RedisClient): Promise<BudgetGate> {
  const common = { registry: new Registry(), now: () => vector.now, ...vector.options };
  if (vector.fault === 'unreachable') return new BudgetGate({ ...common, redisUrl: `redis://127.0.0.1:${await freePort()}` });
  // A short timeout only where Redis is frozen on purpose: elsewhere a busy machine must not turn a vector into a timeout.
  if (vector.fault) return new BudgetGate({ ...common, redis: client, timeoutMs: 50, consecutiveFailuresToOpen: 1, failureStreakMs: 0 });
  return new BudgetGate({ ...common, redis: client, timeoutMs: 1000 });
}

describe('conformance vectors (test/conformance/vectors.json)', () => {
  it('cover every reason, every fail-open, the direction cases, unknown positions and reservations', () => {
    const reasons = new Set(vectors.map((v) => v.expect.reason));
    expect([...reasons].sort()).to.deep.equal([...GateReason.options].sort());
    for (const reason of FAIL_OPEN_REASONS) expect(reasons, reason).to.include(reason);
    const names = vectors.map((v) => v.name).join('\n');
    for (const topic of ['SELL of three times the long flips larger', 'BUY on a short reduces', 'SELL on a short always increases', 'float-rounding', 'upstream 10-field hash', 'position_status stale', 'position_status invalid', 'position_status unknown', 'lapsed reservation', 'own reservation', '14th OPEN']) {
      expect(names, topic).to.contain(topic);
    }
    const details = new Set(vectors.map((v) => v.expect.detail));
    for (const detail of ['recent_violation', 'projected_over_budget', 'position_unknown', 'plan_size_unknown', 'stale', 'timestamp_in_future', 'wrong_type']) expect(details, detail).to.include(detail);
  });

  it('use only fields the gate reads, plus the reservations it writes', () => {
    for (const vector of vectors) {
      if (vector.hash === null || vector.hash === 'wrong_type') continue;
      for (const field of Object.keys(vector.hash)) expect([...BUDGET_HASH_FIELDS, 'notes'], `${vector.name}: ${field}`).to.include(field);
    }
  });

  /** The vectors an in-process decision can judge: a hash that is one, a valid plan that needs it. */
  function* inProcessVectors() {
    for (const vector of vectors) {
      const plan = readPermitRequest(vector.request);
      if (vector.fault || vector.options?.disabled || typeof vector.hash !== 'object' || vector.hash === null) continue;
      if (plan === undefined || isClosingRequest(plan)) continue;
      yield { vector, plan, hash: vector.hash as Record<string, string>, policy: { ...DEFAULT_POLICY, forceShadow: vector.options?.forceShadow === true } };
    }
  }

  // The in-process decision (plugin/decide.ts) judges a hash the way the script does: with no
  // reservations shown (the local cache, which never reserves), and with the headroom other plans
  // hold counted and shown (replay, from the logged `reserved_usd`). A cached allow still goes to
  // Redis to reserve.
  describe('through the in-process decision (the local cache, and replay with the reservations counted)', () => {
    for (const { vector, plan, hash, policy } of inProcessVectors()) {
      if (!vector.reservations?.length) {
        it(`${vector.name} (no reservations shown)`, () => {
          const { reservedUsd: _reserved, source: _source, ...expected } = vector.expect;
          expect(comparable(decideFromBudgetFields(plan, hash, vector.now, policy), vector)).to.deep.equal(expected);
        });
      }
      // The live reservations of other plans: what the script counts against the headroom.
      const reserved = (vector.reservations ?? []).filter((r) => r.ttlMs > 0 && r.planId !== plan.planId).reduce((sum, r) => sum + r.amountUsd, 0);
      it(`${vector.name} (reservations counted)`, () => {
        const { source: _source, ...expected } = vector.expect;
        expect(comparable(decideFromBudgetFields(plan, hash, vector.now, policy, reserved), vector)).to.deep.equal(expected);
      });
    }
  });

  // A symbol whose last decision was a block is read with HMGET and judged in-process
  // (plugin/repeat-block.ts): that read may only ever confirm the very block the script gives.
  describe('through the confirming read of a repeated block (HMGET, judged in-process)', () => {
    for (const { vector, plan, hash, policy } of inProcessVectors()) {
      it(vector.name, () => {
        const values = REPEAT_BLOCK_FIELDS.map((field) => (Object.hasOwn(hash, field) ? hash[field]! : field === RESERVATIONS_FIELD && vector.reservations?.length ? '{}' : null));
        const confirmed = confirmedBlock(plan, readHash(values), vector.now, policy);
        if (vector.expect.wouldBlock && !vector.reservations?.length) {
          const { source: _source, ...expected } = vector.expect;
          expect(confirmed && comparable(confirmed.decision, vector)).to.deep.equal(expected);
        } else {
          // An allow must reserve, a fail-open may clean reservations, and reservations are judged on Redis's clock: the script decides.
          expect(confirmed).to.equal(undefined);
        }
      });
    }
  });

  describe('through the Node gate', () => {
    const redis = useRedisServer();
    let client: RedisClient;
    let admin: RedisClient;
    before(async () => {
      client = await connectedClient(redis.server, 'gate', 1000);
      admin = await connectedClient(redis.server);
    });
    after(() => {
      client.disconnect();
      admin.disconnect();
    });

    for (const vector of vectors) {
      it(vector.name, async () => {
        await admin.flushall();
        await seedVector(admin, vector);
        const gate = await gateFor(vector, client);
        try {
          const frozen = vector.fault === 'frozen' || vector.fault === 'breaker_open';
          if (frozen) redis.server.pause();
          let decision;
          try {
            if (vector.fault === 'breaker_open') {
              for (let i = 0; i < 10 && gate.breakerState !== 'open'; i += 1) await gate.evaluate(vector.request as never);
            }
            decision = await gate.evaluate(vector.request as never);
          } finally {
            if (frozen) redis.server.resume();
          }
          expect(comparable(decision, vector)).to.deep.equal(vector.expect);
          if (vector.reservedAfter) expect(await reservedPlans(admin)).to.deep.equal(vector.reservedAfter);
        } finally {
          await gate.close();
        }
      });
    }
  });

  describe('through POST /v1/decisions', () => {
    const redis = useRedisServer();
    let client: RedisClient;
    let admin: RedisClient;
    before(async () => {
      client = await connectedClient(redis.server, 'gate', 1000);
      admin = await connectedClient(redis.server);
    });
    after(() => {
      client.disconnect();
      admin.disconnect();
    });

    // A fault of the worker's own Redis is the worker's fail-open, proven through the Node gate above.
    for (const vector of vectors.filter((v) => v.fault === undefined)) {
      it(vector.name, async () => {
        await admin.flushall();
        await seedVector(admin, vector);
        const gate = await gateFor(vector, client);
        const http = await startHttpServer({
          host: '127.0.0.1',
          port: 0,
          registry: new Registry(),
          redis: admin,
          gate,
          worker: { mode: 'shadow', modeSource: 'env', role: () => 'leader', lastSuccessAt: () => null } as never,
          instanceId: 'conformance',
          maxBudgetAgeSec: 15,
        });
        try {
          const res = await fetch(`http://127.0.0.1:${http.port}/v1/decisions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(vector.request),
          });
          expect(res.status).to.equal(200);
          expect(await res.json()).to.deep.equal(vector.expect);
          if (vector.reservedAfter) expect(await reservedPlans(admin)).to.deep.equal(vector.reservedAfter);
        } finally {
          await http.close();
          await gate.close();
        }
      });
    }
  });
});
