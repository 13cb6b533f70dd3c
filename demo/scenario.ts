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
  /** The market state publisher's 1-minute sigma that stands for NORMAL (0.33). */
  sigma: 0.0012,
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

/** Python's `str(float)` of a whole or fractional number, as the live services write them: `100000.0`, `0.5`. */
const pyFloat = (x: number): string => (Number.isInteger(x) ? `${x}.0` : String(x));

/**
 * Writes the inputs the worker reads as the live system's services write them today: the
 * portfolio state (with the positions it counted), positions in `quantum:state:positions:<SYMBOL>`
 * (read from the exchange at `nowSec`), market state in `quantum:marketstate:<SYMBOL>`, cluster stress.
 */
export async function seedScenario(client: RedisClient, keys: RedisKeys, nowSec: number): Promise<void> {
  // One command per key, as other services write them.
  const notional = SCENARIO.positions.reduce((sum, p) => sum + Math.abs(p.positionAmt * p.entryPrice), 0);
  await client.hset(keys.portfolioState, {
    equity_usd: SCENARIO.equityUsd.toFixed(2),
    drawdown: '0.0',
    timestamp: String(nowSec),
    positions_count: String(SCENARIO.positions.length),
    positions_notional_usd: notional.toFixed(2),
  });
  for (const p of SCENARIO.positions) {
    await client.hset(keys.positions.key(p.symbol), {
      symbol: p.symbol,
      position_amt: pyFloat(p.positionAmt),
      side: p.positionAmt >= 0 ? 'LONG' : 'SHORT',
      quantity: pyFloat(Math.abs(p.positionAmt)),
      entry_price: pyFloat(p.entryPrice),
      mark_price: pyFloat(p.entryPrice),
      ts_epoch: String(nowSec),
    });
  }
  for (const symbol of [...SCENARIO.positions.map((p) => p.symbol), ...SCENARIO.tracked]) {
    await client.hset(keys.marketStates.key(symbol), { sigma: SCENARIO.sigma.toFixed(8), ts_timestamp: String(nowSec) });
  }
  await client.hset(keys.clusterStress('default'), { stress: String(SCENARIO.clusterStress) });
}
