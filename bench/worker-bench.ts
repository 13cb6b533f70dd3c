import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { BudgetWorker } from '../lib/worker/budget-worker';
import { loadConfig, type WorkerConfig } from '../lib/config';
import type { HeatReader } from '../lib/worker/sources/heat-source';
import { RedisKeys } from '../lib/redis/keys';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { encodeBudgetHash, type BudgetHash } from '../types/budget-hash';
import type { Row } from './report';
import { LatencyProbe, type ProbeSample } from './latency-probe';
import { elapsedUs, max, median, nowNs, percentile } from './stats';

const keys = new RedisKeys();
/** Heat from a fixed reader: the cycle is measured against Redis, not against an HTTP stub. */
const fixedHeat: HeatReader = { read: async () => ({ value: 0.3, source: 'live', ageSec: 0 }) };
/** Hashes per MULTI/EXEC block in the raw baseline: as many as the worker puts in one (HSET + EXPIRE each). */

export interface WorkerBenchOptions {
  sizes: number[];
  /** Measured cycles per size (each paired with a raw baseline cycle). */
  cycles: (symbols: number) => number;
  /** Size and number of the cycles during which another client's HGETALL latency is sampled. */
  probe: { symbols: number; cycles: number };
  /** Appended to every scenario: the core placement the figures were taken under. */
  placement?: string;
  /** CPUs of the latency probe (taskset list); default the benchmark's. */
  probeCpus?: string;
}

export interface WorkerRssOptions {
  /** Cycles of the memory run; RSS is compared after 10 and after this many. */
  cycles: number;
  symbols: number;
}

export interface LargeBookOptions {
  symbols: number;
  cycles: number;
}

async function seed(client: RedisClient, symbols: number): Promise<void> {
  await client.flushall();
  const nowSec = String(Math.floor(Date.now() / 1000));
  await client.hset(keys.portfolioState, { equity_usd: '100000.00', timestamp: nowSec });
  for (let from = 0; from < symbols; from += 5000) {
    const pipeline = client.pipeline();
    for (let i = from; i < Math.min(symbols, from + 5000); i++) {
      const symbol = `S${i}USDT`;
      // Positions as the position state brain writes them; the market state in the legacy family,
      // which carries the regime names and cluster ids the budgets vary by.
      const amt = (i % 7) - 3 || 1;
      pipeline.hset(keys.positions.key(symbol), { position_amt: `${amt}.0`, side: amt > 0 ? 'LONG' : 'SHORT', entry_price: '10.0', mark_price: `${10 + (i % 100)}.0`, ts_epoch: nowSec });
      pipeline.hset(keys.marketState(symbol), { vol_regime: ['LOW', 'NORMAL', 'HIGH', 'EXTREME'][i % 4]!, cluster_id: `c${i % 5}` });
    }
    await pipeline.exec();
  }
  for (let c = 0; c < 5; c++) await client.hset(keys.clusterStress(`c${c}`), { stress: String(c / 10) });
}

/** Keeps the portfolio state fresh, as the portfolio service would, for benchmarks that outlast STALE_SEC. */
async function refreshPortfolio(client: RedisClient): Promise<void> {
  await client.hset(keys.portfolioState, { timestamp: String(Math.floor(Date.now() / 1000)) });
}

/** Every input family the worker scans: positions and market state, live and legacy. */
const INPUT_FAMILIES = [keys.positions, keys.legacyPositions!, keys.marketStates, keys.legacyMarketStates!];

async function scanAll(client: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 10000);
    found.push(...page);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/**
 * The baseline: what a worker cycle asks of Redis, written with plain ioredis (a client with its
 * defaults: no command timeout, so no timer per command) and no more: a lease PEXPIRE, the head
 * batch beside the SCANs of the four input families, one pipeline reading every key they found,
 * one of the cluster reads, one pipeline of MULTI/EXEC blocks of HSET + EXPIRE with the field
 * values of the worker's latest cycle ready-made, and the heartbeat HSET. No parsing, validation,
 * computation or metrics.
 */
async function rawCycle(client: Redis, writes: readonly { key: string; fields: string[] }[], ttlSec: number): Promise<void> {
  await client.set(RAW_LEASE, RAW_LEASE_VALUE, 'PX', 15000);
  const [, ...found] = await Promise.all([
    client.pipeline().get(keys.modeOverride).xrevrange(keys.modeAuditStream, '+', '-', 'COUNT', 1).hgetall(keys.portfolioState).hgetall(keys.workerHeartbeat).exec(),
    ...INPUT_FAMILIES.map((family) => scanAll(client, family.pattern)),
  ]);
  const reads = client.pipeline();
  for (const key of found.flat()) reads.hgetall(key);
  const replies = (await reads.exec())!;
  // Each symbol's cluster is its legacy market hash's cluster_id, else `default`.
  const legacyMarket = keys.legacyMarketStates!;
  const clusterOf = new Map<string, string>();
  found.flat().forEach((key, i) => {
    const symbol = [keys.positions, keys.legacyPositions!, keys.marketStates, legacyMarket].map((f) => f.symbolOf(key)).find((s) => s !== undefined)!.symbol;
    const clusterId = legacyMarket.symbolOf(key) ? (replies[i]![1] as Record<string, string>).cluster_id : undefined;
    if (clusterId !== undefined || !clusterOf.has(symbol)) clusterOf.set(symbol, clusterId ?? clusterOf.get(symbol) ?? 'default');
  });
  const clusters = new Set(clusterOf.values());
  const stress = client.pipeline();
  for (const id of clusters) stress.hgetall(keys.clusterStress(id));
  await stress.exec();
  // The worker's fenced write, one EVALSHA per hash checking the lease (standalone), as the worker sends it.
  const sha = await fencedScriptSha(client);
  const out = client.pipeline();
  for (const { key, fields } of writes) out.evalsha(sha, 2, key, RAW_LEASE, RAW_EPOCH, RAW_LEASE_VALUE, ttlSec, 0, ...fields);
  const results = await out.exec();
  if (results?.some(([error, value]) => error || value !== 1)) throw new Error('baseline write pipeline failed');
  const beat = ['last_success_ts', String(Date.now()), 'leader', 'raw', 'symbols_written', String(writes.length), 'cycle_ms', '0'];
  await client.evalsha(sha, 2, keys.workerHeartbeat, RAW_LEASE, RAW_EPOCH, RAW_LEASE_VALUE, 0, 0, ...beat);
}

const RAW_LEASE = 'bench:raw:lease';
const RAW_EPOCH = '1';
const RAW_LEASE_VALUE = `raw/${RAW_EPOCH}`;
let fencedSha: string | undefined;
async function fencedScriptSha(client: Redis): Promise<string> {
  fencedSha ??= (await client.script('LOAD', readFileSync(join(__dirname, '..', 'lib', 'redis', 'lua', 'fenced-write-1.lua'), 'utf8'))) as string;
  return fencedSha;
}

const rawWrites = (budgets: readonly BudgetHash[]) =>
  budgets.map((b) => ({ key: keys.budget(b.symbol), fields: Object.entries(encodeBudgetHash(b)).flat() }));

/** Per-command call counts (INFO commandstats) of what `run` asks of Redis. */
async function commandCalls(admin: RedisClient, run: () => Promise<unknown>): Promise<Record<string, number>> {
  await admin.config('RESETSTAT');
  await run();
  const info = await admin.info('commandstats');
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) if (m[1] !== 'config') calls[m[1]!] = Number(m[2]);
  return calls;
}

/**
 * CPU time of Redis's main thread so far, in ms (INFO cpu, from getrusage): unlike commandstats,
 * which times commands by the clock, it does not grow while a loaded machine keeps Redis waiting.
 */
async function redisCpuMs(admin: RedisClient): Promise<number> {
  const info = await admin.info('cpu');
  const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
  return (seconds('used_cpu_user_main_thread') + seconds('used_cpu_sys_main_thread')) * 1000;
}

/** Throws unless the worker and the baseline send the same data commands (the lease differs: script vs SET). */
function expectSameWork(worker: Record<string, number>, raw: Record<string, number>, symbols: number): void {
  // Both write each hash by the fenced script: its HSET and EXPIRE count as commands (EVALSHA differs by the lease script).
  for (const name of ['scan', 'hgetall', 'hset', 'expire']) {
    if (worker[name] !== raw[name]) {
      throw new Error(`at ${symbols} symbols the baseline does not do the worker's work: ${name} ${raw[name]} vs ${worker[name]} (${JSON.stringify({ worker, raw })})`);
    }
  }
}

function workerConfig(server: LocalRedisServer): WorkerConfig {
  // Positions are seeded once: POSITION_STALE_SEC is a day, so a long run keeps judging them as fresh.
  return loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'silent', P28_INSTANCE_ID: 'bench', P28_MAX_SYMBOLS: '100000', POSITION_STALE_SEC: '86400' });
}

async function connect(server: LocalRedisServer, commandTimeoutMs?: number): Promise<RedisClient> {
  const client = createRedisClient({ url: server.url, profile: 'worker', commandTimeoutMs });
  await waitForReady(client, 5000);
  return client;
}

/**
 * A worker cycle against raw ioredis doing the same reads and writes, at each size, cycles
 * alternating so both see the same machine load; then another client's HGETALL latency (from a
 * process of its own) while cycles run.
 */
export async function runWorkerBench(server: LocalRedisServer, o: WorkerBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const where = o.placement ? `, ${o.placement}` : '';
  const admin = await connect(server, 30000);
  // The worker's own client exactly as the service creates it (default command timeout); the
  // baseline a plain ioredis client with ioredis's defaults.
  const workerClient = await connect(server);
  const raw = new Redis(server.url);
  const config = workerConfig(server);

  for (const symbols of o.sizes) {
    log(`worker${where}: ${symbols} symbols`);
    await seed(admin, symbols);
    const worker = new BudgetWorker({ config, redis: workerClient, heatSource: fixedHeat });
    let last = await worker.runOnce(); // takes the lease
    if (last.result !== 'ok' || last.written.length !== symbols) throw new Error(`first cycle at ${symbols}: ${last.result} ${last.error ?? ''}`);
    let writes = rawWrites(last.budgets);
    const workerCalls = await commandCalls(admin, async () => {
      last = await worker.runOnce();
    });
    const rawCalls = await commandCalls(admin, () => rawCycle(raw, writes, config.budgetHashTtlSec));
    expectSameWork(workerCalls, rawCalls, symbols);

    const workerMs: number[] = [];
    const rawMs: number[] = [];
    const workerCpuMs: number[] = [];
    const rawCpuMs: number[] = [];
    for (let i = 0; i < o.cycles(symbols); i++) {
      await refreshPortfolio(admin);
      const timeWorker = async () => {
        const cpu = await redisCpuMs(admin);
        const t = nowNs();
        last = await worker.runOnce();
        workerMs.push(elapsedUs(t) / 1000);
        workerCpuMs.push((await redisCpuMs(admin)) - cpu);
        if (last.result !== 'ok') throw new Error(`cycle at ${symbols}: ${last.result} ${last.error ?? ''}`);
      };
      const timeRaw = async () => {
        const cpu = await redisCpuMs(admin);
        const t = nowNs();
        await rawCycle(raw, writes, config.budgetHashTtlSec);
        rawMs.push(elapsedUs(t) / 1000);
        rawCpuMs.push((await redisCpuMs(admin)) - cpu);
      };
      // Alternate which goes first, so neither always follows the other's garbage.
      if (i % 2 === 0) await timeWorker().then(timeRaw);
      else await timeRaw().then(timeWorker);
      writes = rawWrites(last.budgets);
    }
    const value = median(workerMs);
    const baseline = median(rawMs);
    log(`worker${where}: ${symbols} symbols, worker ms ${JSON.stringify(workerMs.map(Math.round))}, raw ms ${JSON.stringify(rawMs.map(Math.round))}`);
    rows.push({
      scenario: `worker cycle, ${symbols.toLocaleString('en-US')} symbols vs raw ioredis doing the same reads and writes${where}`,
      metric: 'cycle time (median)',
      unit: 'ms',
      value,
      baseline,
      ratio: value / baseline,
      target: '<= 1.3x raw',
      met: value / baseline <= 1.3,
    });
    rows.push({
      scenario: `worker cycle, ${symbols.toLocaleString('en-US')} symbols vs raw ioredis${where}`,
      metric: 'Redis main-thread CPU per cycle (median)',
      unit: 'ms',
      value: median(workerCpuMs),
      baseline: median(rawCpuMs),
      ratio: median(workerCpuMs) / median(rawCpuMs),
    });
    await worker.stop();
  }

  rows.push(...(await latencyWhileCycling(server, admin, workerClient, config, o, where, log)));
  raw.disconnect();
  admin.disconnect();
  workerClient.disconnect();
  return rows;
}

/** Another client's HGETALL latency while cycles run, against the same client with Redis idle. */
async function latencyWhileCycling(
  server: LocalRedisServer,
  admin: RedisClient,
  workerClient: RedisClient,
  config: WorkerConfig,
  o: WorkerBenchOptions,
  where: string,
  log: (s: string) => void,
): Promise<Row[]> {
  const { symbols, cycles } = o.probe;
  log(`worker${where}: another client's HGETALL during ${cycles} cycles at ${symbols} symbols`);
  await seed(admin, symbols);
  const worker = new BudgetWorker({ config, redis: workerClient, heatSource: fixedHeat });
  await worker.runOnce();
  const probe = await LatencyProbe.start(server.url, keys.budget('S0USDT'), o.probeCpus);
  // Every command Redis takes longer than 1 ms over, to name what holds it longest.
  await admin.config('SET', 'slowlog-log-slower-than', '1000');
  await admin.config('SET', 'slowlog-max-len', '10000');
  await admin.slowlog('RESET');
  await new Promise((r) => setTimeout(r, 200)); // the probe's own warm-up is not Redis latency
  const idleFrom = Date.now();
  await new Promise((r) => setTimeout(r, 500));
  const idleTo = Date.now();
  const windows: [number, number][] = [];
  for (let i = 0; i < cycles; i++) {
    await refreshPortfolio(admin);
    const from = Date.now();
    const report = await worker.runOnce();
    windows.push([from, Date.now()]);
    if (report.result !== 'ok') throw new Error(`probe cycle: ${report.result} ${report.error ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const samples = await probe.stop();
  const slow = (await admin.slowlog('GET', 10000)) as [number, number, number, string[]][];
  await admin.config('SET', 'slowlog-log-slower-than', '10000');
  await worker.stop();
  const longest = slow.reduce<[number, string]>((m, [, , us, args]) => (us > m[0] ? [us, String(args[0]).toLowerCase()] : m), [0, '-']);
  const inside = (s: ProbeSample, [from, to]: [number, number]) => s.atMs >= from && s.atMs <= to;
  const idle = samples.filter((s) => inside(s, [idleFrom, idleTo])).map((s) => s.latencyMs);
  const busy = samples.filter((s) => windows.some((w) => inside(s, w))).map((s) => s.latencyMs);
  if (busy.length === 0 || idle.length === 0) throw new Error('latency probe took no samples');
  log(`worker${where}: probe ${busy.length} samples during cycles (max ${max(busy).toFixed(1)} ms), ${idle.length} idle; ${slow.length} commands over 1 ms, longest ${longest[1]} ${longest[0]} µs`);
  const scenario = `another client's HGETALL while ${symbols.toLocaleString('en-US')}-symbol cycles run, vs Redis idle${where}`;
  return [
    { scenario, metric: 'latency p50', unit: 'ms', value: median(busy), baseline: median(idle), ratio: median(busy) / median(idle) },
    {
      scenario,
      metric: 'latency p99',
      unit: 'ms',
      value: percentile(busy, 0.99),
      baseline: percentile(idle, 0.99),
      ratio: percentile(busy, 0.99) / percentile(idle, 0.99),
      target: '< 10 ms',
      met: percentile(busy, 0.99) < 10,
    },
    {
      scenario: `Redis during ${symbols.toLocaleString('en-US')}-symbol cycles${where}`,
      metric: `longest single command (SLOWLOG: ${slow.length > 0 ? longest[1] : 'none over 1 ms'})`,
      unit: 'ms',
      value: longest[0] / 1000,
    },
  ];
}

/** A cycle over a large book with the default command timeout: every hash written, cycle `ok`. */
export async function runLargeBookBench(server: LocalRedisServer, o: LargeBookOptions, log: (s: string) => void): Promise<Row[]> {
  const admin = await connect(server, 30000);
  const workerClient = await connect(server);
  log(`worker: ${o.symbols} symbols`);
  await seed(admin, o.symbols);
  const worker = new BudgetWorker({ config: workerConfig(server), redis: workerClient, heatSource: fixedHeat });
  const ms: number[] = [];
  let allOk = true;
  for (let i = 0; i < o.cycles; i++) {
    await refreshPortfolio(admin);
    const report = await worker.runOnce();
    ms.push(report.durationMs);
    allOk &&= report.result === 'ok' && report.written.length === o.symbols;
  }
  await worker.stop();
  admin.disconnect();
  workerClient.disconnect();
  return [
    {
      scenario: `worker cycle, ${o.symbols.toLocaleString('en-US')} symbols, default 1 s command timeout`,
      metric: `cycle time (median of ${o.cycles}), every cycle ok with every hash written`,
      unit: 'ms',
      value: median(ms),
      target: 'every cycle ok',
      met: allOk,
    },
  ];
}

/** Resident set and live heap in MiB, after a full collection when the process runs with --expose-gc. */
function memoryMiB(): { rss: number; heapUsed: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss: rss / 2 ** 20, heapUsed: heapUsed / 2 ** 20 };
}

/**
 * Worker RSS after 10 cycles against after many. Run first in the process, before other scenarios
 * grow the heap, so that the two readings differ only by what the cycles themselves keep.
 */
export async function runWorkerRssBench(server: LocalRedisServer, o: WorkerRssOptions, log: (s: string) => void): Promise<Row[]> {
  const admin = await connect(server, 30000);
  const workerClient = await connect(server);
  const config = workerConfig(server);
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
