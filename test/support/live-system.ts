import type { RedisClient } from '../../lib/redis/client';

/**
 * Writes the worker's inputs exactly as the live trading system's services write them today:
 * the same keys, fields, number formats and TTLs (the P3.3 position state brain, the market state
 * publisher and the portfolio state publisher). Numbers that those services pass to redis-py as
 * Python floats appear as Python's `repr` (`100000.0`, `-0.5`, `1e-05`), formatted ones as their
 * format strings (`%.2f`, `%.8f`).
 */

/** Python's `str(float)`: `100000.0`, `0.5`, `-0.0`, `1e-05`, `1.5e+16`. */
export function pyFloat(x: number): string {
  if (Object.is(x, -0)) return '-0.0';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`;
  // Python switches to an exponent below 1e-4 (JavaScript only below 1e-6).
  const text = x !== 0 && Math.abs(x) < 1e-4 ? x.toExponential() : String(x);
  // JavaScript writes exponents as e-5 and e+21; Python as e-05 and e+21.
  return text.replace(/e([+-])(\d)$/, 'e$10$2');
}

const fixed = (x: number, digits: number): string => x.toFixed(digits);

export interface LivePosition {
  /** Signed position size (positionAmt of the exchange). */
  amt: number;
  entryPrice: number;
  markPrice: number;
  /** Epoch seconds the position was read from the exchange (`ts_epoch`). */
  tsEpoch: number;
  leverage?: number;
  unrealizedPnl?: number;
  /** The brain's key TTL: 3600 s for a polled symbol, 300 s for an on-demand snapshot. */
  ttlSec?: number;
}

/** `microservices/position_state_brain/main.py` `update_exchange_snapshot`: HSET mapping, then EXPIRE. */
export async function writePositionAsBrain(client: RedisClient, symbol: string, p: LivePosition): Promise<void> {
  const key = `quantum:state:positions:${symbol}`;
  await client.hset(key, {
    symbol,
    position_amt: pyFloat(p.amt),
    side: p.amt > 0 ? 'LONG' : p.amt < 0 ? 'SHORT' : 'FLAT',
    quantity: pyFloat(Math.abs(p.amt)),
    entry_price: pyFloat(p.entryPrice),
    mark_price: pyFloat(p.markPrice),
    current_price: pyFloat(p.markPrice),
    unrealized_pnl: pyFloat(p.unrealizedPnl ?? 0),
    leverage: String(p.leverage ?? 10),
    ts_epoch: String(p.tsEpoch),
    source: 'position_state_brain',
  });
  await client.expire(key, p.ttlSec ?? 3600);
}

export interface LiveMarketState {
  /** Robust EWMA volatility of 1-minute log returns. */
  sigma: number;
  mu?: number;
  /** Epoch seconds it was computed (`ts_timestamp`). */
  tsTimestamp: number;
  pTrend?: number;
  pMr?: number;
  pChop?: number;
  /** The publisher's interval; the key's TTL is ten of them. */
  publishIntervalSec?: number;
}

/** `microservices/market_state_publisher/main.py` `compute_and_publish`: HSET mapping, then EXPIRE interval * 10. */
export async function writeMarketStateAsPublisher(client: RedisClient, symbol: string, m: LiveMarketState): Promise<void> {
  const key = `quantum:marketstate:${symbol}`;
  await client.hset(key, {
    sigma: fixed(m.sigma, 8),
    mu: fixed(m.mu ?? 0.0001, 8),
    ts: fixed(0.5, 6),
    p_trend: fixed(m.pTrend ?? 0.2, 6),
    p_mr: fixed(m.pMr ?? 0.5, 6),
    p_chop: fixed(m.pChop ?? 0.3, 6),
    dp: fixed(0.01, 6),
    vr: fixed(1.02, 6),
    spike_proxy: fixed(0.001, 6),
    ts_timestamp: String(m.tsTimestamp),
    buffer_size: '300',
  });
  await client.expire(key, (m.publishIntervalSec ?? 60) * 10);
}

export interface LivePortfolio {
  equityUsd: number;
  /** Epoch seconds of the publish. */
  nowSec: number;
  /** What the publisher counted: every `quantum:state:positions:*` key and the sum of |amt * mark|. */
  positionsCount: number;
  positionsNotionalUsd: number;
  unrealizedPnlUsd?: number;
}

/** `microservices/portfolio_state_publisher/main.py` `publish_portfolio_state`: HSET mapping, then EXPIRE 120. */
export async function writePortfolioAsPublisher(client: RedisClient, p: LivePortfolio): Promise<void> {
  const key = 'quantum:state:portfolio';
  const pnl = p.unrealizedPnlUsd ?? 0;
  await client.hset(key, {
    ts_utc: String(p.nowSec),
    timestamp: String(p.nowSec),
    equity_usd: fixed(p.equityUsd, 2),
    balance_usd: fixed(p.equityUsd - pnl, 2),
    unrealized_pnl_usd: fixed(pnl, 2),
    positions_count: String(p.positionsCount),
    positions_notional_usd: fixed(p.positionsNotionalUsd, 2),
    source: 'portfolio-state-publisher',
    drawdown: '0.0',
  });
  await client.expire(key, 120);
}

export interface LiveBook {
  nowSec: number;
  equityUsd?: number;
  positions: Record<string, Omit<LivePosition, 'tsEpoch'> & { tsEpoch?: number }>;
  /** Symbols with a market state, and their 1-minute sigma. */
  sigmas?: Record<string, number>;
}

/**
 * A whole book as the three services leave it: positions, then the portfolio state counted from
 * them as its publisher counts (every key, |amt * mark|), then the market state.
 */
export async function writeLiveBook(client: RedisClient, book: LiveBook): Promise<void> {
  let notional = 0;
  for (const [symbol, p] of Object.entries(book.positions)) {
    await writePositionAsBrain(client, symbol, { ...p, tsEpoch: p.tsEpoch ?? book.nowSec });
    notional += Math.abs(p.amt * p.markPrice);
  }
  await writePortfolioAsPublisher(client, {
    equityUsd: book.equityUsd ?? 100000,
    nowSec: book.nowSec,
    positionsCount: Object.keys(book.positions).length,
    positionsNotionalUsd: notional,
  });
  for (const [symbol, sigma] of Object.entries(book.sigmas ?? {})) {
    await writeMarketStateAsPublisher(client, symbol, { sigma, tsTimestamp: book.nowSec });
  }
}
