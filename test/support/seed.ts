import type { BudgetHash } from '../../types/budget-hash';
import { loadConfig, type WorkerConfig } from '../../lib/config';
import type { LocalRedisServer } from '../../lib/local-redis-server';
import type { RedisClient } from '../../lib/redis';
import type { Registry } from 'prom-client';

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

/**
 * The value of one series of a registry's metric (0 when the series does not exist), read through
 * prom-client's own API. For a histogram, name the `_count` or `_sum` series.
 */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const base = name.replace(/_(count|sum|bucket)$/, '');
  const own = registry.getSingleMetric(base) ? base : name;
  const metric = registry.getSingleMetric(own);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const sameLabels = (actual: Record<string, unknown>) =>
    Object.keys(actual).length === Object.keys(labels).length && Object.entries(labels).every(([k, want]) => String(actual[k]) === want);
  const match = values.find((v) => ((v as { metricName?: string }).metricName ?? own) === name && sameLabels(v.labels));
  return match?.value ?? 0;
}

/** Label sets of a metric's series. */
export async function metricLabels(registry: Registry, name: string): Promise<Record<string, string | number>[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values.map((v) => ({ ...v.labels }) as Record<string, string | number>);
}

/**
 * The budget hash the worker writes for the guide's Test 1 (equity 100000, heat 0.65, vol NORMAL,
 * BTCUSDT 0.5 @ 100000): budget 1348, 48652 over it.
 */
export function guideTest1Budget(overrides: Partial<BudgetHash> = {}): BudgetHash {
  return {
    symbol: 'BTCUSDT',
    budget_usd: 1348,
    stress_factor: 0.326,
    equity_usd: 100000,
    portfolio_heat: 0.65,
    cluster_stress: 0,
    vol_regime: 0.33,
    mode: 'shadow',
    timestamp: 1764000000,
    base_risk_pct: 0.02,
    position_amt: 0.5,
    position_notional_usd: 50000,
    over_budget_usd: 48652,
    last_violation_ts: 1764000000,
    position_price: 100000,
    ...overrides,
  };
}
