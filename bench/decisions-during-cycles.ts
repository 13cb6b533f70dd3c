import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { RedisKeys } from '../lib/redis/keys';
import type { GateDecision } from '../types/permit';
import type { LocalRedisServer } from '../dev/local-redis-server';
import type { Row } from './report';
import { percentile } from './stats';

const ROOT = join(__dirname, '..');

export interface DecisionsDuringCyclesOptions {
  /** Symbols in the book (the case: 20,000). */
  symbols: number;
  /** HTTP decisions per second sent to the worker (200). */
  ratePerSec: number;
  /** Seconds of load per run. */
  seconds: number;
  /** Runs, for the spread. */
  runs: number;
  /** BUDGET_COMPUTE_INTERVAL_SEC of the worker: short, so that it is computing most of the time. */
  intervalSec: number;
  /**
   * Runs more with the cycle on the event loop of the HTTP API (P28_CYCLE_THREAD=0), after the
   * others: the same machine at the same hour, for comparison (default 0).
   */
  inProcessRuns?: number;
}

export interface DecisionRun {
  latenciesMs: number[];
  /** Decisions that failed open as `timeout` (the gate's read outlived timeoutMs). */
  timeouts: number;
  /** Requests that got no answer within 2 s, or an error. */
  lost: number;
  /** Leader cycles completed during the run, and their longest duration. */
  cycles: number;
  longestCycleMs: number;
  /** The machine's 1-minute load average at the end of the run (other work on a shared machine shows here). */
  loadAverage: number;
}

/** Seeds a book of `n` symbols with positions and market state, and a fresh portfolio state. */
export async function seedBook(client: RedisClient, n: number): Promise<void> {
  const keys = new RedisKeys();
  await client.hset(keys.portfolioState, { equity_usd: '1000000', drawdown: '0', timestamp: String(Math.floor(Date.now() / 1000)) });
  for (let from = 0; from < n; from += 5000) {
    const pipeline = (client as import('ioredis').Redis).pipeline();
    for (let i = from; i < Math.min(n, from + 5000); i++) {
      const symbol = `S${i}USDT`;
      pipeline.hset(keys.positionSnapshot(symbol), { position_amt: String((i % 7) - 3), entry_price: '10', mark_price: String(10 + (i % 100)) });
      pipeline.hset(keys.marketState(symbol), { vol_regime: ['LOW', 'NORMAL', 'HIGH', 'EXTREME'][i % 4]!, cluster_id: `c${i % 5}` });
    }
    await pipeline.exec();
  }
}

export function post(port: number, agent: Agent, body: string): Promise<GateDecision> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/decisions', method: 'POST', agent, timeout: 2000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(data) as GateDecision);
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts `p28-worker` from source in its own process and resolves with its HTTP port. */
export function startWorker(server: LocalRedisServer, o: Pick<DecisionsDuringCyclesOptions, 'symbols' | 'intervalSec'>, lines: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: server.url,
      HEAT_GATE_METRICS_URL: 'http://127.0.0.1:9/metrics',
      PORT: '0',
      LOG_LEVEL: 'info',
      P28_INSTANCE_ID: 'bench-worker',
      P28_MODE: 'enforce',
      BUDGET_COMPUTE_INTERVAL_SEC: String(o.intervalSec),
      BUDGET_HASH_TTL_SEC: String(Math.max(60, Math.ceil(o.intervalSec * 2))),
      STALE_SEC: '3600',
      P28_MAX_SYMBOLS: String(Math.max(20000, o.symbols)),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffered = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        const port = /"port":(\d+)/.exec(line);
        if (port) resolve({ child, port: Number(port[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
}

/** One run: the worker computing its cycles of `symbols` while decisions arrive at `ratePerSec`. */
async function oneRun(server: LocalRedisServer, o: DecisionsDuringCyclesOptions, env: Record<string, string> = {}): Promise<DecisionRun> {
  const lines: string[] = [];
  const { child, port } = await startWorker(server, o, lines, env);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  try {
    // Load only once the worker writes budgets, so every decision finds its hash.
    const deadline = Date.now() + 120_000;
    while (!lines.some((l) => l.includes('"result":"ok"'))) {
      if (Date.now() > deadline) throw new Error('the worker wrote no budgets within 120 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const cyclesBefore = lines.length;
    const run: DecisionRun = { latenciesMs: [], timeouts: 0, lost: 0, cycles: 0, longestCycleMs: 0, loadAverage: 0 };
    const pending: Promise<void>[] = [];
    const gapMs = 1000 / o.ratePerSec;
    const started = performance.now();
    for (let i = 0; performance.now() - started < o.seconds * 1000; i++) {
      const due = started + i * gapMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const symbol = `S${(i * 7919) % o.symbols}USDT`;
      const body = JSON.stringify({ planId: `bench-${i}`, symbol, action: 'OPEN', side: 'BUY', qty: 1 });
      // Latency from when the request was due, so a stalled sender cannot hide a stalled server.
      pending.push(
        post(port, agent, body).then(
          (decision) => {
            run.latenciesMs.push(performance.now() - due);
            if (decision.reason === 'timeout') run.timeouts += 1;
          },
          () => {
            run.lost += 1;
          },
        ),
      );
    }
    await Promise.all(pending);
    run.loadAverage = loadavg()[0]!;
    for (const line of lines.slice(cyclesBefore)) {
      if (!line.includes('"msg":"cycle"') || !line.includes('"role":"leader"')) continue;
      run.cycles += 1;
      run.longestCycleMs = Math.max(run.longestCycleMs, Number(/"durationMs":([\d.]+)/.exec(line)?.[1] ?? 0));
    }
    return run;
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** One run's figures in one line. */
function describeRun(run: DecisionRun): string {
  const ms = (q: number) => percentile(run.latenciesMs, q);
  return (
    `p50 ${ms(0.5).toFixed(2)} ms, p99 ${ms(0.99).toFixed(2)} ms, max ${ms(1).toFixed(1)} ms, ${run.timeouts} timeouts, ${run.lost} lost of ${run.latenciesMs.length + run.lost}; ` +
    `${run.cycles} cycles (longest ${run.longestCycleMs.toFixed(0)} ms); load average ${run.loadAverage.toFixed(1)}`
  );
}

/**
 * HTTP decisions while the worker computes: `POST /v1/decisions` at `ratePerSec` against a
 * worker process whose cycles cover `symbols` symbols, back to back, in their own thread (the
 * default, P28_CYCLE_THREAD=1). Target (per run): p99 under 25 ms and no decision failing open as
 * `timeout`. Each run is its own worker process; the rows give the median over runs and the spread
 * (min..max) in the metric name. `inProcessRuns` more runs with the cycle on the HTTP API's event
 * loop (P28_CYCLE_THREAD=0) give the figure the thread is compared with, on the same machine.
 */
export async function runDecisionsDuringCyclesBench(server: LocalRedisServer, o: DecisionsDuringCyclesOptions, log: (s: string) => void): Promise<Row[]> {
  const seed = createRedisClient({ url: server.url, profile: 'worker', commandTimeoutMs: 60_000 });
  await waitForReady(seed, 5000);
  await seed.flushall();
  await seedBook(seed, o.symbols);
  seed.disconnect();
  // Control: the same worker, book and load, but no cycle after the first (interval of an hour):
  // what the machine itself gives decisions right now, against which the figures below are read.
  const control = await oneRun(server, { ...o, intervalSec: 3600 });
  log(`decisions with no cycle running (control), ${o.symbols} symbols: ${describeRun(control)}`);
  const runs: DecisionRun[] = [];
  for (let r = 0; r < o.runs; r++) {
    const run = await oneRun(server, o);
    runs.push(run);
    log(`decisions during ${o.symbols}-symbol cycles in the cycle thread, run ${r + 1}/${o.runs}: ${describeRun(run)}`);
  }
  const inProcess: DecisionRun[] = [];
  for (let r = 0; r < (o.inProcessRuns ?? 0); r++) {
    const run = await oneRun(server, o, { P28_CYCLE_THREAD: '0' });
    inProcess.push(run);
    log(`decisions during ${o.symbols}-symbol cycles in-process (P28_CYCLE_THREAD=0), run ${r + 1}/${o.inProcessRuns}: ${describeRun(run)}`);
  }
  const scenario = `HTTP decisions at ${o.ratePerSec}/s during ${o.symbols}-symbol cycles (worker process, cycle thread, ${o.seconds} s x ${o.runs})`;
  const p99s = runs.map((run) => percentile(run.latenciesMs, 0.99));
  const p50s = runs.map((run) => percentile(run.latenciesMs, 0.5));
  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(1)}..${Math.max(...xs).toFixed(1)}`;
  const failedOpen = runs.reduce((n, run) => n + run.timeouts + run.lost, 0);
  const rows: Row[] = [
    { scenario, metric: `latency p50 (median of runs; spread ${spread(p50s)}); baseline: no cycle running`, unit: 'ms', value: percentile(p50s, 0.5), baseline: percentile(control.latenciesMs, 0.5) },
    { scenario, metric: `latency p99 (worst run; spread ${spread(p99s)}); baseline: no cycle running`, unit: 'ms', value: Math.max(...p99s), baseline: percentile(control.latenciesMs, 0.99), target: '< 25 ms', met: Math.max(...p99s) < 25 },
    { scenario, metric: 'timeouts and lost requests (all runs); baseline: no cycle running', unit: 'decisions', value: failedOpen, baseline: control.timeouts + control.lost, target: '0', met: failedOpen === 0 },
    { scenario, metric: 'leader cycles during the load (all runs)', unit: 'cycles', value: runs.reduce((n, run) => n + run.cycles, 0) },
  ];
  if (inProcess.length > 0) {
    const inProcessP99s = inProcess.map((run) => percentile(run.latenciesMs, 0.99));
    rows.push({ scenario, metric: `latency p99 (worst run); baseline: the cycle in-process, P28_CYCLE_THREAD=0 (worst of ${inProcess.length})`, unit: 'ms', value: Math.max(...p99s), baseline: Math.max(...inProcessP99s) });
  }
  return rows;
}
