import type { RedisKeys } from '../lib/redis/keys';
import type { RedisClient } from '../lib/redis/client';
import type { PermitRequest } from '../types/permit';

/**
 * The deployment guide's test scenarios. Test 1: equity 100000, BTCUSDT 0.5 @ 100000 (50000
 * notional), vol NORMAL, cluster stress 0, heat 0.65: budget 1348, over budget by 48652.
 * Test 2: the same at heat 0.15: budget 1748. ETHUSDT is a small position within its budget.
 */
export const SCENARIO = Object.freeze({
  equityUsd: 100000,
  heat: { test1: 0.65, test2: 0.15 },
  positions: [
    { symbol: 'BTCUSDT', positionAmt: 0.5, entryPrice: 100000 },
    { symbol: 'ETHUSDT', positionAmt: 0.2, entryPrice: 3000 },
  ],
  /** Tracked by the market engine (a market hash), not held: the worker gives it a flat budget hash. */
  tracked: ['SOLUSDT'],
  volRegime: 'NORMAL',
  clusterStress: 0,
});

/** Symbols the worker writes budgets for: the positions, and the tracked symbol at position 0. */
export const BUDGET_SYMBOLS: readonly string[] = [...SCENARIO.positions.map((p) => p.symbol), ...SCENARIO.tracked];

/** A plan the demo asks a permit for, without its planId. */
export type DemoPlan = Omit<PermitRequest, 'planId'>;

/** Grows BTCUSDT, already 48652 over its Test 1 budget, from 50000 to 51000. */
export const BTC_ADD_OVER_BUDGET: DemoPlan = { symbol: 'BTCUSDT', action: 'ADD', side: 'BUY', qty: 0.01 };

/** Grows ETHUSDT from 600 to 1500: above the Test 1 budget (1348), within the Test 2 one (1748). */
export const ETH_ADD_ABOVE_TEST1: DemoPlan = { symbol: 'ETHUSDT', action: 'ADD', side: 'BUY', qty: 0.3 };

/** Opens SOLUSDT (tracked, flat) for 2000 USD: above its 1348 budget, so enforce blocks it. */
export const SOL_OPEN_OVER_BUDGET: DemoPlan = { symbol: 'SOLUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 2000 };

/**
 * The plans sent in each mode: an add to the over-budget BTCUSDT, adds to ETHUSDT that stay within
 * and that go beyond its budget, a partial and a full close, an open over budget on SOLUSDT, which
 * the fund does not hold but the market engine tracks (so it has a flat budget hash), and an open on
 * DOGEUSDT, which nothing knows and therefore has no budget hash (the gate fails open).
 */
export const DEMO_PLANS: readonly DemoPlan[] = Object.freeze([
  BTC_ADD_OVER_BUDGET,
  { symbol: 'ETHUSDT', action: 'ADD', side: 'BUY', qty: 0.1 },
  ETH_ADD_ABOVE_TEST1,
  { symbol: 'BTCUSDT', action: 'PARTIAL_50' },
  { symbol: 'BTCUSDT', action: 'FULL_CLOSE_PROPOSED' },
  SOL_OPEN_OVER_BUDGET,
  { symbol: 'DOGEUSDT', action: 'OPEN', side: 'BUY', qty: 5 },
]);

/** `ADD BUY 0.01`, `OPEN BUY 2000 USD`, `PARTIAL_50`: a plan as a trader would name it. */
export function planLabel(plan: DemoPlan): string {
  const notional = plan.notionalUsd === undefined ? undefined : `${plan.notionalUsd} USD`;
  return [plan.action, plan.side, plan.qty, notional].filter((part) => part !== undefined).join(' ');
}

/** Writes the inputs the worker reads: portfolio state (timestamped `nowSec`), positions, market state, cluster stress. */
export async function seedScenario(client: RedisClient, keys: RedisKeys, nowSec: number): Promise<void> {
  // One command per key, as other services write them.
  await client.hset(keys.portfolioState, { equity_usd: String(SCENARIO.equityUsd), drawdown: '0', timestamp: String(nowSec) });
  for (const p of SCENARIO.positions) {
    await client.hset(keys.positionSnapshot(p.symbol), {
      position_amt: String(p.positionAmt),
      entry_price: String(p.entryPrice),
      side: p.positionAmt >= 0 ? 'LONG' : 'SHORT',
    });
    await client.hset(keys.marketState(p.symbol), { vol_regime: SCENARIO.volRegime });
  }
  for (const symbol of SCENARIO.tracked) await client.hset(keys.marketState(symbol), { vol_regime: SCENARIO.volRegime });
  await client.hset(keys.clusterStress('default'), { stress: String(SCENARIO.clusterStress) });
}
