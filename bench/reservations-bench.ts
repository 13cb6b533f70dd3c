import { RedisKeys } from '../lib/redis/keys';
import { createRedisClient, waitForReady } from '../lib/redis/client';
import { withScripts } from '../lib/redis/lua-scripts';
import { DEFAULT_DECISION_POLICY } from '../plugin/gate-options';
import { planScriptArgs } from '../plugin/plan-script';
import { encodeBudgetHash } from '../types/budget-hash';
import { budgetFixture } from '../dev/budget-fixture';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { availablePlacements, withPlacement } from './placement';
import { latencyRows, type Row } from './report';
import { elapsedUs, nowNs } from './stats';

const keys = new RedisKeys();
const FEW = 5;

export interface ReservationsBenchOptions {
  /** Numbers of live reservations on the symbol to measure, each against `FEW`. */
  liveCounts: number[];
  samples: number;
}

/** A roomy flat symbol holding `live` reservations of other plans, live for an hour. */
async function seed(client: ReturnType<typeof withScripts>, symbol: string, live: number): Promise<void> {
  const nowSec = Math.floor(Date.now() / 1000);
  const fields = encodeBudgetHash(budgetFixture({ symbol, mode: 'enforce', timestamp: nowSec, budget_usd: 1e12, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 }));
  const expires = Date.now() + 3_600_000;
  const reservations = JSON.stringify(Object.fromEntries(Array.from({ length: live }, (_, i) => [`live-${i}`, ['100', expires]])));
  await client.multi().del(keys.budget(symbol)).hset(keys.budget(symbol), { ...fields, reservations }).expire(keys.budget(symbol), 3600).exec();
}

/**
 * What a decision costs as the live reservations on its symbol grow: the script reads and counts
 * every one of them (`decide-plan-1.lua`), so a Governor that lets filled plans lapse instead of
 * releasing them holds its plan rate times the TTL. The decision script is called directly for a
 * plan that reserves (released after each sample, outside the timing), on a symbol with many live
 * reservations and, interleaved in blocks, on one with `FEW`.
 */
export async function runReservationsBench(server: LocalRedisServer, o: ReservationsBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const client = withScripts(createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 10_000 }));
  await waitForReady(client, 5000);
  let n = 0;
  const sample = async (symbol: string, out: number[]) => {
    const planId = `scale-${(n += 1)}`;
    const args = planScriptArgs({ planId, symbol, action: 'OPEN', side: 'BUY', notionalUsd: 100 }, Date.now(), DEFAULT_DECISION_POLICY, 30_000, false);
    const t = nowNs();
    const reply = await client.p28DecidePlan(keys.budget(symbol), ...args);
    out.push(elapsedUs(t));
    if (reply[0] !== 'within_budget') throw new Error(`reservations bench: expected within_budget, got ${reply[0]}`);
    await client.p28ReleaseReservation(keys.budget(symbol), planId);
  };
  try {
    for (const placement of availablePlacements()) {
      await withPlacement(placement, server.pid, async () => {
        for (const live of o.liveCounts) {
          log(`reservations: ${live} live on the symbol, ${placement.name}`);
          await seed(client, 'FEWUSDT', FEW);
          await seed(client, 'MANYUSDT', live);
          const few: number[] = [];
          const many: number[] = [];
          for (let i = 0; i < 10; i += 1) await sample('MANYUSDT', []);
          while (many.length < o.samples) {
            for (let i = 0; i < 50; i += 1) await sample('FEWUSDT', few);
            for (let i = 0; i < 50; i += 1) await sample('MANYUSDT', many);
          }
          rows.push(...latencyRows(`decision script, a plan that reserves, ${live} live reservations on its symbol vs ${FEW}, ${placement.name}`, 'µs', { a: few, b: many }));
        }
      });
    }
  } finally {
    client.disconnect();
  }
  return rows;
}
