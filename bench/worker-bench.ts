import { BudgetWorker } from '../lib/worker/budget-worker';
import { loadConfig } from '../lib/config';
import type { HeatReader } from '../lib/worker/heat-source';
import { RedisKeys } from '../lib/redis/keys';
import type { LocalRedisServer } from '../test/support/local-redis-server';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { encodeBudgetHash, type BudgetHash } from '../types/budget-hash';
import type { Row } from './report';
import { socketWrites } from '../test/support/socket-writes';
import { elapsedUs, median, nowNs } from './stats';

const keys = new RedisKeys();
/** Heat from a fixed reader: the cycle is measured against Redis, not against an HTTP stub. */
const fixedHeat: HeatReader = { read: async () => ({ value: 0.3, source: 'live', ageSec: 0 }) };

export interface WorkerBenchOptions {
  sizes: number[];
  /** Measured cycles per size (each paired with a baseline run). */
  cycles: (symbols: number) => number;
}

export interface WorkerRssOptions {
  /** Cycles of the memory run; RSS is compared after 10 and after this many. */
  cycles: number;
  symbols: number;
}

async function seed(client: RedisClient, symbols: number): Promise<void> {
  await client.flushall();
  await client.hset(keys.portfolioState, { equity_usd: '100000', timestamp: String(Math.floor(Date.now() / 1000)) });
  for (let from = 0; from < symbols; from += 1000) {
    const pipeline = client.pipeline();
    for (let i = from; i < Math.min(symbols, from + 1000); i++) {
      const symbol = `S${i}USDT`;
      pipeline.hset(keys.positionSnapshot(symbol), { position_amt: String((i % 7) - 3 || 1), entry_price: '10', mark_price: String(10 + (i % 100)) });
      pipeline.hset(keys.marketState(symbol), { vol_regime: ['LOW', 'NORMAL', 'HIGH', 'EXTREME'][i % 4]!, cluster_id: `c${i % 5}` });
    }
    await pipeline.exec();
  }
  for (let c = 0; c < 5; c++) await client.hset(keys.clusterStress(`c${c}`), { stress: String(c / 10) });
}

/** The baseline: the same hashes with their TTL through one raw pipeline (HSET + EXPIRE per key). */
async function rawWrite(client: RedisClient, budgets: readonly BudgetHash[], ttlSec: number): Promise<void> {
  const pipeline = client.pipeline();
  for (const budget of budgets) {
    const key = keys.budget(budget.symbol);
    pipeline.hset(key, encodeBudgetHash(budget)).expire(key, ttlSec);
  }
  const results = await pipeline.exec();
  if (results?.some(([error]) => error)) throw new Error('baseline pipeline failed');
}


/** Resident set and live heap in MiB, after a full collection when the process runs with --expose-gc. */
function memoryMiB(): { rss: number; heapUsed: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss: rss / 2 ** 20, heapUsed: heapUsed / 2 ** 20 };
}

/** A worker cycle against a raw pipeline writing the same hashes, at each size. */
export async function runWorkerBench(server: LocalRedisServer, o: WorkerBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const admin = createRedisClient({ url: server.url, profile: 'worker', commandTimeoutMs: 30000 });
  // The worker's own client exactly as the service creates it (default command timeout).
  const workerClient = createRedisClient({ url: server.url, profile: 'worker' });
  await Promise.all([waitForReady(admin, 5000), waitForReady(workerClient, 5000)]);
  const config = loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'silent', P28_INSTANCE_ID: 'bench' });
  const writesBySize: number[] = [];

  for (const symbols of o.sizes) {
    log(`worker: ${symbols} symbols`);
    await seed(admin, symbols);
    const worker = new BudgetWorker({ config, redis: workerClient, heatSource: fixedHeat });
    const first = await worker.runOnce(); // takes the lease and loads the scripts
    if (first.result !== 'ok' || first.written.length !== symbols) throw new Error(`first cycle at ${symbols}: ${first.result} ${first.error ?? ''}`);
    const workerMs: number[] = [];
    const rawMs: number[] = [];
    let scanPages = 0;
    for (let i = 0; i < o.cycles(symbols); i++) {
      let t = nowNs();
      const report = await worker.runOnce();
      workerMs.push(elapsedUs(t) / 1000);
      if (report.result !== 'ok') throw new Error(`cycle at ${symbols}: ${report.result}`);
      scanPages = report.scanPages;
      t = nowNs();
      await rawWrite(workerClient, report.budgets, config.budgetHashTtlSec);
      rawMs.push(elapsedUs(t) / 1000);
    }
    const writes = await socketWrites(workerClient, () => worker.runOnce());
    writesBySize.push(writes);
    const value = median(workerMs);
    const baseline = median(rawMs);
    rows.push({
      scenario: `worker cycle, ${symbols.toLocaleString('en-US')} symbols vs raw pipeline of the same hashes`,
      metric: 'cycle time (median)',
      unit: 'ms',
      value,
      baseline,
      ratio: value / baseline,
      target: '<= 2x raw',
      met: value / baseline <= 2,
    });
    rows.push({
      scenario: `worker cycle, ${symbols.toLocaleString('en-US')} symbols`,
      metric: `Redis round trips per cycle (${scanPages} SCAN page${scanPages === 1 ? '' : 's'})`,
      unit: 'count',
      value: writes,
      // Two SCANs (position snapshots, market states): the baseline counts one page of each.
      baseline: writes - scanPages + 2,
      target: 'constant in symbols (baseline: with one page per SCAN)',
    });
    await worker.stop();
  }
  const withoutScan = rows.filter((r) => r.unit === 'count').map((r) => r.baseline);
  rows.push({
    scenario: 'worker, round trips across sizes',
    metric: 'round trips besides SCAN pages, same at every size',
    unit: 'count',
    value: withoutScan[0] ?? Number.NaN,
    target: 'constant',
    met: withoutScan.every((w) => w === withoutScan[0]),
  });

  admin.disconnect();
  workerClient.disconnect();
  log(`worker: socket writes per cycle by size ${JSON.stringify(Object.fromEntries(o.sizes.map((s, i) => [s, writesBySize[i]])))}`);
  return rows;
}

/**
 * Worker RSS after 10 cycles against after many. Run first in the process, before other scenarios
 * grow the heap, so that the two readings differ only by what the cycles themselves keep.
 */
export async function runWorkerRssBench(server: LocalRedisServer, o: WorkerRssOptions, log: (s: string) => void): Promise<Row[]> {
  const admin = createRedisClient({ url: server.url, profile: 'worker', commandTimeoutMs: 30000 });
  const workerClient = createRedisClient({ url: server.url, profile: 'worker' });
  await Promise.all([waitForReady(admin, 5000), waitForReady(workerClient, 5000)]);
  const config = loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'silent', P28_INSTANCE_ID: 'bench' });
  log(`worker: ${o.cycles} cycles at ${o.symbols} symbols for RSS`);
  await seed(admin, o.symbols);
  const worker = new BudgetWorker({ config, redis: workerClient, heatSource: fixedHeat });
  let at10 = { rss: 0, heapUsed: 0 };
  for (let i = 1; i <= o.cycles; i++) {
    const report = await worker.runOnce();
    if (report.result !== 'ok') throw new Error(`rss cycle ${i}: ${report.result}`);
    if (i === 10) at10 = memoryMiB();
  }
  const end = memoryMiB();
  await worker.stop();
  admin.disconnect();
  workerClient.disconnect();
  return [
    {
      scenario: `worker RSS, ${o.symbols} symbols, after ${o.cycles} cycles vs after 10`,
      metric: 'resident memory',
      unit: 'MiB',
      value: end.rss,
      baseline: at10.rss,
      ratio: end.rss / at10.rss,
      target: 'within 10%',
      met: Math.abs(end.rss / at10.rss - 1) <= 0.1,
    },
    {
      // RSS also holds heap pages V8 keeps after a collection; the live heap shows what cycles retain.
      scenario: `worker live heap after GC, ${o.symbols} symbols, after ${o.cycles} cycles vs after 10`,
      metric: 'heapUsed',
      unit: 'MiB',
      value: end.heapUsed,
      baseline: at10.heapUsed,
      ratio: end.heapUsed / at10.heapUsed,
      target: 'within 10%',
      met: Math.abs(end.heapUsed / at10.heapUsed - 1) <= 0.1,
    },
  ];
}
