import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { RedisKeys } from '../lib/redis/keys';
import { createRedisClient, waitForReady } from '../lib/redis/client';
import { startHttpServer } from '../lib/worker/http-server';
import { BudgetGate } from '../plugin/budget-gate';
import { encodeBudgetHash } from '../types/budget-hash';
import { encodeViolationEvent } from '../types/violation-event';
import { budgetFixture } from '../dev/budget-fixture';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { packagePython, PYTHON_PACKAGE_DIR } from '../dev/python';
import { availablePlacements, withPlacement, type Placement } from './placement';
import { latencyRows, type Row } from './report';

const run = promisify(execFile);
const BLOCKED = 'BLOCKEDUSDT';
const ROOMY = 'PYROOMYUSDT';
/** Target: the in-process Python gate against the check the upstream Governor runs today. */
const PYTHON_P50_MAX_RATIO = 0.6;

export interface PythonBenchOptions {
  samples: number;
  /** Rounds of the paced decision-log measurement (one phase of each of three gates per round). */
  pacedRounds: number;
  /** Seconds of each paced phase (1,000 decisions a second). */
  pacedPhaseSec: number;
}

/** The decision log's goal: at most 5 % added to a decision's p99 (as for the Node gate). */
const LOG_P99_MAX_RATIO = 1.05;

/**
 * The Python Governor's ways to the budget, side by side in one Python process on the same
 * redis-server, under each core placement (the Python process pinned to the bench's core):
 * `check_portfolio_budget` of the in-process gate (a plan that reserves, a blocked plan), the HTTP
 * client with keep-alive, and a raw HGETALL, each against the upstream Governor's own check
 * (HGETALL + XREVRANGE COUNT 10 + JSON, `bench/python_gate_bench.py`); then what the Python gate's
 * decision log adds at a Governor's pace, against the same gate without it and a control. Skipped,
 * and said so, when no interpreter has the package (`.ci/run` installs it).
 */
export async function runPythonBench(server: LocalRedisServer, o: PythonBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const python = packagePython();
  if (python === undefined) {
    log('python: no interpreter with p28_budget_gate and redis (clients/python/.venv, see .ci/run): Python rows skipped');
    return [];
  }
  const rows: Row[] = [];
  for (const placement of availablePlacements()) {
    log(`python: placement ${placement.name}`);
    rows.push(...(await withPlacement(placement, server.pid, () => measure(server, python, placement, o, log))));
  }
  return rows;
}

async function seed(server: LocalRedisServer): Promise<void> {
  const keys = new RedisKeys();
  const client = createRedisClient({ url: server.url, profile: 'worker' });
  await waitForReady(client, 5000);
  const nowSec = Math.floor(Date.now() / 1000);
  const blocked = encodeBudgetHash(budgetFixture({ symbol: BLOCKED, mode: 'enforce', timestamp: nowSec, last_violation_ts: nowSec }));
  const roomy = encodeBudgetHash(budgetFixture({ symbol: ROOMY, mode: 'enforce', timestamp: nowSec, budget_usd: 1e12, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 }));
  const batch = client.multi().hset(keys.budget(BLOCKED), blocked).hset(keys.budget(ROOMY), roomy);
  // Ten violations, the newest of the blocked symbol, for the upstream check's XREVRANGE COUNT 10.
  for (let i = 0; i < 10; i++) {
    const symbol = i === 9 ? BLOCKED : `OTHER${i}USDT`;
    batch.xadd(keys.violationStream, '*', ...encodeViolationEvent({ event_type: 'budget.violation', symbol, position_notional: 5000, budget_usd: 1348, over_budget: 3652, mode: 'enforce', timestamp: nowSec }));
  }
  await batch.exec();
  client.disconnect();
}

async function measure(server: LocalRedisServer, python: string, placement: Placement, o: PythonBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const at = `, ${placement.name}`;
  await seed(server);
  const gateClient = createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 1000 });
  await waitForReady(gateClient, 5000);
  const gate = new BudgetGate({ redis: gateClient, registry: new Registry(), timeoutMs: 1000 });
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    redis: gateClient,
    gate,
    worker: { mode: 'enforce' } as never,
    instanceId: 'bench',
    maxBudgetAgeSec: 15,
  });
  try {
    const pin = placement.benchCore === undefined ? [] : ['taskset', '-c', String(placement.benchCore)];
    const command = [...pin, python, join(__dirname, 'python_gate_bench.py'), String(server.port), String(o.samples), '100', `http://127.0.0.1:${http.port}`, ROOMY, BLOCKED, String(o.pacedRounds), String(o.pacedPhaseSec)];
    const { stdout } = await run(command[0]!, command.slice(1), { cwd: PYTHON_PACKAGE_DIR, timeout: 600000, maxBuffer: 64 * 1024 * 1024 });
    const s = JSON.parse(stdout) as Record<'upstream' | 'reserving' | 'blocked' | 'http' | 'hgetall' | 'paced_log' | 'paced_nolog' | 'paced_control', number[]> & { failOpen: Record<string, number> };
    if (Object.keys(s.failOpen).length > 0) log(`python: fail-open decisions${at} (a stalled host; counted, never a block): ${JSON.stringify(s.failOpen)}`);
    const upstream = 'the upstream Governor\'s check (HGETALL + XREVRANGE 10 + JSON)';
    return [
      ...latencyRows(`Python check_portfolio_budget, a plan that reserves, vs ${upstream}${at}`, 'µs', { a: s.upstream, b: s.reserving }, { p50: { maxRatio: PYTHON_P50_MAX_RATIO } }),
      ...latencyRows(`Python check_portfolio_budget, a blocked plan, vs ${upstream}${at}`, 'µs', { a: s.upstream, b: s.blocked }, { p50: { maxRatio: PYTHON_P50_MAX_RATIO } }),
      ...latencyRows(`Python HTTP client (keep-alive) POST /v1/decisions vs ${upstream}${at}`, 'µs', { a: s.upstream, b: s.http }),
      ...latencyRows(`Python raw HGETALL (the floor) vs ${upstream}${at}`, 'µs', { a: s.upstream, b: s.hgetall }),
      ...latencyRows(`Python check_portfolio_budget, 1000 decisions/s with the decision log vs without (${o.pacedRounds} rounds of ${o.pacedPhaseSec} s, phase order rotating)${at}`, 'µs', { a: s.paced_nolog, b: s.paced_log }, { p99: { maxRatio: LOG_P99_MAX_RATIO } }),
      ...latencyRows(`Python check_portfolio_budget, 1000 decisions/s, a second gate without the log vs the first (the measurement's own spread)${at}`, 'µs', { a: s.paced_nolog, b: s.paced_control }),
    ];
  } finally {
    await http.close();
    await gate.close();
    gateClient.disconnect();
  }
}
