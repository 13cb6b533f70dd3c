import { loadConfig, type WorkerConfig } from '../../lib/config';
import type { LocalRedisServer } from './local-redis-server';
import type { RedisClient } from '../../lib/redis/client';

// One metricValue helper for every suite; kept importable from here for the suites that seed and read.
export { metricLabels, metricValue } from './metric-values';

/** A worker configuration against a private server: contract defaults plus `env`. */
export function workerConfig(server: LocalRedisServer, env: Record<string, string> = {}): WorkerConfig {
  return loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'silent', P28_INSTANCE_ID: 'test-worker', ...env });
}

export interface GuideScenario {
  equityUsd?: number;
  /** Epoch seconds of the portfolio state. */
  timestampSec: number;
  symbol?: string;
  positionAmt?: string;
  entryPrice?: string;
  volRegime?: string;
  clusterStress?: string;
}

/**
 * Seeds the deployment guide's Test 1 inputs (equity 100000, BTCUSDT 0.5 @ 100000, vol NORMAL,
 * cluster stress 0) as the live system writes them today: the position in
 * `quantum:state:positions:<SYMBOL>` read from the exchange at `timestampSec`, the portfolio state
 * with the position it counted, the market state in `quantum:marketstate:<SYMBOL>` (a 1-minute
 * sigma in the NORMAL band). A `volRegime` name is the legacy family's business: it is written to
 * `quantum:state:market:<SYMBOL>`, where it wins. Heat comes from the heat source.
 */
export async function seedGuideScenario(client: RedisClient, s: GuideScenario): Promise<void> {
  const symbol = s.symbol ?? 'BTCUSDT';
  const amt = s.positionAmt ?? '0.5';
  const price = s.entryPrice ?? '100000';
  const notional = Math.abs(Number(amt) * Number(price));
  await client.hset('quantum:state:portfolio', {
    equity_usd: String(s.equityUsd ?? 100000),
    drawdown: '0.0',
    timestamp: String(s.timestampSec),
    ...(Number.isFinite(notional) ? { positions_count: '1', positions_notional_usd: notional.toFixed(2) } : {}),
  });
  await client.hset(`quantum:state:positions:${symbol}`, {
    symbol,
    position_amt: amt,
    side: Number(amt) > 0 ? 'LONG' : Number(amt) < 0 ? 'SHORT' : 'FLAT',
    entry_price: price,
    mark_price: price,
    ts_epoch: String(Math.floor(s.timestampSec)),
    source: 'position_state_brain',
  });
  if (s.volRegime === undefined) {
    await client.hset(`quantum:marketstate:${symbol}`, { sigma: '0.00120000', ts_timestamp: String(Math.floor(s.timestampSec)) });
  } else {
    await client.hset(`quantum:state:market:${symbol}`, { vol_regime: s.volRegime });
  }
  await client.hset('quantum:cluster:stress:default', { stress: s.clusterStress ?? '0' });
}

/**
 * Seeds `count` symbols with open positions (S0USDT, S1USDT, ...) as the position state brain writes
 * them (read from the exchange now), and their market state in the legacy family, whose regime
 * names and cluster ids the budgets vary by.
 */
export async function seedSymbols(client: RedisClient, count: number, from = 0): Promise<string[]> {
  const symbols = Array.from({ length: count }, (_, i) => `S${from + i}USDT`);
  const nowSec = String(Math.floor(Date.now() / 1000));
  // One command per key: works on a Redis Cluster too, where a pipeline may not span slots.
  await Promise.all(
    symbols.flatMap((symbol, i) => [
      client.hset(`quantum:state:positions:${symbol}`, { position_amt: `${((from + i) % 7) - 3 || 1}.0`, entry_price: '10.0', mark_price: '11.0', ts_epoch: nowSec }),
      client.hset(`quantum:state:market:${symbol}`, { vol_regime: ['LOW', 'NORMAL', 'HIGH', 'EXTREME'][(from + i) % 4]!, cluster_id: `c${(from + i) % 5}` }),
    ]),
  );
  return symbols;
}
