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
 * cluster stress 0); heat comes from the heat source.
 */
export async function seedGuideScenario(client: RedisClient, s: GuideScenario): Promise<void> {
  const symbol = s.symbol ?? 'BTCUSDT';
  await client.hset('quantum:state:portfolio', { equity_usd: String(s.equityUsd ?? 100000), drawdown: '0', timestamp: String(s.timestampSec) });
  await client.hset(`quantum:position:snapshot:${symbol}`, { position_amt: s.positionAmt ?? '0.5', entry_price: s.entryPrice ?? '100000', side: 'LONG' });
  await client.hset(`quantum:state:market:${symbol}`, { vol_regime: s.volRegime ?? 'NORMAL' });
  await client.hset('quantum:cluster:stress:default', { stress: s.clusterStress ?? '0' });
}

/** Seeds `count` symbols with open positions (S0USDT, S1USDT, ...) and their market state. */
export async function seedSymbols(client: RedisClient, count: number, from = 0): Promise<string[]> {
  const symbols = Array.from({ length: count }, (_, i) => `S${from + i}USDT`);
  // One command per key: works on a Redis Cluster too, where a pipeline may not span slots.
  await Promise.all(
    symbols.flatMap((symbol, i) => [
      client.hset(`quantum:position:snapshot:${symbol}`, { position_amt: String(((from + i) % 7) - 3 || 1), entry_price: '10', mark_price: '11' }),
      client.hset(`quantum:state:market:${symbol}`, { vol_regime: ['LOW', 'NORMAL', 'HIGH', 'EXTREME'][(from + i) % 4]!, cluster_id: `c${(from + i) % 5}` }),
    ]),
  );
  return symbols;
}
