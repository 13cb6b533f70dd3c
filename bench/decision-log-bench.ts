import type Redis from 'ioredis';
import { BudgetGate } from '../plugin/budget-gate';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { RedisKeys } from '../lib/redis/keys';
import { withScripts } from '../lib/redis/lua-scripts';
import { loadConfig } from '../lib/config';
import { readinessCommand } from '../lib/commands/readiness-command';
import { replayCommand } from '../lib/commands/replay-command';
import { BUDGET_HASH_FIELDS, encodeBudgetHash } from '../types/budget-hash';
import type { PermitRequest } from '../types/permit';
import { budgetFixture } from '../dev/budget-fixture';
import { LocalRedisServer } from '../dev/local-redis-server';
import { latencyRows, machine, table, type Row } from './report';
import { elapsedUs, median, nowNs, percentile } from './stats';
import { metricValue } from '../dev/metric-values';
import { joinedCopy } from '../plugin/known-fields-memo';
import { SAME_FIELDS } from '../plugin/plan-script';

/** µs of each of `n` serial calls of `op`, after a warm-up of 500. */
async function serial(op: () => Promise<unknown>, n: number): Promise<number[]> {
  for (let i = 0; i < 500; i++) await op();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = nowNs();
    await op();
    out.push(elapsedUs(t));
  }
  return out;
}

const keys = new RedisKeys();
const SYMBOL = 'ETHUSDT';
const PLAN: PermitRequest = { planId: 'bench', symbol: SYMBOL, action: 'OPEN', side: 'BUY', qty: 0.1 };
/** The goal: logging adds at most 5 % to a decision's p99. */
const LOG_P99_MAX_RATIO = 1.05;
const REPLAY_MAX_SECONDS = 10;

export interface DecisionLogBenchOptions {
  /** Serial decisions per gate and round. */
  serialSamples: number;
  rounds: number;
  /** Rounds of the paced measurement (one phase of each gate per round). */
  pacedRounds: number;
  /** Logged decisions replayed. */
  replayDecisions: number;
  /** Decisions per round of the CPU measurement. */
  cpuDecisions: number;
}

/**
 * The CPU the log adds to each decision, without the noise of a round trip: a gate whose budget
 * read answers at once (the fields of a within-budget hash), with its log writing to the real
 * redis-server, against the same gate without a log. The callers yield to the event loop every 64
 * decisions, as permits arriving on sockets do, so the log's batches are written (and paid for)
 * inside the measurement. Median of five alternating rounds, with the spread.
 */
async function cpuPerDecision(server: LocalRedisServer, n: number, log: (s: string) => void): Promise<Row> {
  log('decision log: CPU per decision with an instant read');
  const nowSec = Math.floor(Date.now() / 1000);
  const { last_violation_ts: _none, ...record } = budgetFixture({ symbol: SYMBOL, timestamp: nowSec + 3600, position_amt: 1, position_notional_usd: 1000, over_budget_usd: 0, position_price: 1000 });
  const fields = encodeBudgetHash(record);
  const values = BUDGET_HASH_FIELDS.map((name) => fields[name] ?? null);
  const joined = joinedCopy(values);
  const real = createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 1000 });
  real.on('error', () => undefined);
  await waitForReady(real, 5000);
  const instant = {
    status: 'ready',
    options: { commandTimeout: 50 },
    hmget: () => Promise.resolve(values),
    // The decision script's reply for that hash (an allow), with its fields appended for the log
    // unless the gate's copy of them is the same (then '=', as the script answers).
    defineCommand: () => undefined,
    p28DecidePlan: (_key: string, ...args: string[]) =>
      Promise.resolve(['within_budget', '', 'enforce', fields.budget_usd!, fields.position_notional_usd!, '1100', '0', ...(args[11] === '2' && args[12] === joined ? [SAME_FIELDS] : values)]),
    duplicate: (overrides: object) => (real as Redis).duplicate(overrides),
    on: () => instant,
    once: () => instant,
    off: () => instant,
  } as unknown as RedisClient;
  const logged = new BudgetGate({ redis: instant, maxClockSkewMs: 86400000 });
  const bare = new BudgetGate({ redis: instant, maxClockSkewMs: 86400000, decisionLogMaxLen: 0 });
  const run = async (gate: BudgetGate): Promise<number> => {
    const t = nowNs();
    for (let i = 0; i < n; i++) {
      await gate.evaluate(PLAN);
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    return elapsedUs(t) / n;
  };
  const added: number[] = [];
  let bareUs = 0;
  try {
    if ((await logged.evaluate(PLAN)).reason !== 'within_budget') throw new Error('cpu bench: expected within_budget');
    await run(logged);
    await run(bare);
    for (let round = 0; round < 5; round++) {
      bareUs = await run(bare);
      added.push((await run(logged)) - bareUs);
    }
    const dropped = await metricValue(logged.registry, 'p28_decision_log_dropped_total', { cause: 'queue_full' });
    if (dropped > 0) log(`decision log: ${dropped} entries dropped (queue full) in the CPU rounds`);
  } finally {
    await logged.close();
    await bare.close();
    real.disconnect();
  }
  added.sort((a, b) => a - b);
  return {
    scenario: `gate, CPU the decision log adds per decision (instant read, log to Redis; 5 rounds, spread ${added[0]!.toFixed(2)} to ${added[4]!.toFixed(2)} µs)`,
    metric: 'time per decision',
    unit: 'µs',
    value: added[2]!,
    baseline: bareUs,
    ratio: (bareUs + added[2]!) / bareUs,
  };
}

/** Decisions a second in the paced measurement: a busy Governor's rate, not the bench's flat-out one. */
const PACED_RATE = 1000;
/** Seconds of each phase of the paced measurement. */
const PACED_PHASE_SECONDS = 2;

/**
 * `PACED_RATE` decisions a second for `PACED_PHASE_SECONDS`, one every millisecond from a timer
 * (the log then writes its batches between decisions, as it does in a Governor), each timed from
 * when it is sent to when it is answered.
 */
async function paced(gate: BudgetGate): Promise<number[]> {
  const out: number[] = [];
  const perTick = PACED_RATE / 1000;
  const ticks = PACED_PHASE_SECONDS * 1000;
  for (let tick = 0; tick < ticks; tick++) {
    await new Promise((r) => setTimeout(r, 1));
    for (let i = 0; i < perTick; i++) {
      const t = nowNs();
      await gate.evaluate(PLAN);
      out.push(elapsedUs(t));
    }
  }
  return out;
}

/**
 * The log's cost at a Governor's pace: the gate with the log and the same gate without it take
 * turns, a phase each per round, with a third gate, also without the log, as a control: what the
 * control differs from the gate without the log is the measurement's own spread (two instances of
 * the same code on the same machine), the yardstick for the log's figure. Each gate's samples of
 * every round are pooled, so that the machine's moments of load fall on all alike. The order of
 * the phases rotates from round to round, and every logged phase is followed by a wait for its
 * last batch (`settle`), so no gate's phase meets another's leftover work. The per-round p99
 * ratios give the spread.
 */
async function pacedRows(client: RedisClient, gates: { withLog: BudgetGate; withoutLog: BudgetGate; control: BudgetGate }, rounds: number, settle: () => Promise<void>, log: (s: string) => void): Promise<Row[]> {
  const pooled = { a: [] as number[], b: [] as number[], c: [] as number[] };
  const ratios: number[] = [];
  const phases: Array<[keyof typeof pooled, () => Promise<number[]>]> = [
    ['a', () => paced(gates.withoutLog)],
    [
      'b',
      async () => {
        const samples = await paced(gates.withLog);
        await settle();
        return samples;
      },
    ],
    ['c', () => paced(gates.control)],
  ];
  for (let round = 1; round <= rounds; round++) {
    await seed(client);
    if (round === 1 || round === rounds) log(`decision log: paced ${PACED_RATE} decisions/s, round ${round} of ${rounds}`);
    const samples: Partial<Record<keyof typeof pooled, number[]>> = {};
    for (let k = 0; k < phases.length; k++) {
      const [name, run] = phases[(k + round) % phases.length]!;
      samples[name] = await run();
      pooled[name].push(...samples[name]);
    }
    ratios.push(percentile(samples.b!, 0.99) / percentile(samples.a!, 0.99));
  }
  ratios.sort((x, y) => x - y);
  const spread = `${rounds} rounds of ${PACED_PHASE_SECONDS} s each, phase order rotating; p99 ratio per round ${ratios[0]!.toFixed(2)} to ${ratios[ratios.length - 1]!.toFixed(2)}, median ${median(ratios).toFixed(2)}`;
  return [
    ...latencyRows(`gate, ${PACED_RATE} decisions/s with the decision log vs without (${spread})`, 'µs', { a: pooled.a, b: pooled.b }, { p99: { maxRatio: LOG_P99_MAX_RATIO } }),
    ...latencyRows(`gate, ${PACED_RATE} decisions/s, a second gate without the log vs the first (the measurement's own spread, same rounds)`, 'µs', { a: pooled.a, b: pooled.c }),
  ];
}

/** A fresh within-budget hash (budget 1348, position 1000): every plan reads it and is judged. */
async function seed(client: RedisClient): Promise<void> {
  const nowSec = Math.floor(Date.now() / 1000);
  const { last_violation_ts: _none, ...fields } = budgetFixture({ symbol: SYMBOL, timestamp: nowSec, position_amt: 1, position_notional_usd: 1000, over_budget_usd: 0, position_price: 1000 });
  await client.multi().hset(keys.budget(SYMBOL), encodeBudgetHash(fields)).expire(keys.budget(SYMBOL), 3600).exec();
}

/**
 * What the decision log adds to a decision, and how fast a million logged decisions are judged
 * again: a gate with the log against the same gate without it (serial decisions and decisions at a
 * Governor's pace, in whole phases, several rounds for the spread), then `replay` and `readiness` over a stream of
 * `replayDecisions` entries written by a real gate's encoder.
 */
export async function runDecisionLogBench(server: LocalRedisServer, o: DecisionLogBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const client = createRedisClient({ url: server.url, profile: 'worker', commandTimeoutMs: 60000 });
  client.on('error', () => undefined);
  await waitForReady(client, 5000);
  await client.del(keys.decisionLogStream);
  const withLog = new BudgetGate({ redisUrl: server.url, instanceId: 'bench-logged' });
  const withoutLog = new BudgetGate({ redisUrl: server.url, decisionLogMaxLen: 0 });
  const control = new BudgetGate({ redisUrl: server.url, decisionLogMaxLen: 0 });
  try {
    await Promise.all([withLog.ready(), withoutLog.ready(), control.ready()]);
    // Whole phases, not interleaved blocks: the log writes a batch every few ms, and that work
    // must land in the logged phase, not in the baseline's. Phases alternate, and each logged
    // phase is followed by a wait for its last batch, so both see the same machine load.
    const written = () => metricValue(withLog.registry, 'p28_decision_log_written_total');
    /** Waits until the logged gate's last batch is written (its count stops moving). */
    const settle = async () => {
      for (let before = -1, now = await written(); now !== before; before = now, now = await written()) await new Promise((r) => setTimeout(r, 50));
    };
    for (let round = 1; round <= o.rounds; round++) {
      await seed(client);
      log(`decision log: serial latency, round ${round} of ${o.rounds}`);
      // The order of the two gates alternates from round to round; the logged one's last batch is waited for.
      const samples = { a: [] as number[], b: [] as number[] };
      if (round % 2 === 1) samples.a = await serial(() => withoutLog.evaluate(PLAN), o.serialSamples);
      samples.b = await serial(() => withLog.evaluate(PLAN), o.serialSamples);
      await settle();
      if (round % 2 === 0) samples.a = await serial(() => withoutLog.evaluate(PLAN), o.serialSamples);
      rows.push(...latencyRows(`gate, serial evaluate() with the decision log vs without, round ${round}`, 'µs', samples, { p99: { maxRatio: LOG_P99_MAX_RATIO } }));
      const [p999, base999] = [percentile(samples.b, 0.999), percentile(samples.a, 0.999)];
      rows.push({ scenario: `gate, serial evaluate() with the decision log vs without, round ${round}`, metric: 'latency p99.9', unit: 'µs', value: p999, baseline: base999, ratio: p999 / base999 });
    }
    rows.push(...(await pacedRows(client, { withLog, withoutLog, control }, o.pacedRounds, settle, log)));
    const dropped = await metricValue(withLog.registry, 'p28_decision_log_dropped_total', { cause: 'queue_full' });
    if (dropped > 0) log(`decision log: ${dropped} entries dropped (queue full) during the latency phases`);
  } finally {
    await withLog.close();
    await withoutLog.close();
    await control.close();
  }

  rows.push(await cpuPerDecision(server, o.cpuDecisions, log));

  log(`decision log: writing ${o.replayDecisions} entries`);
  const template = (await client.xrange(keys.decisionLogStream, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
  const fields = template[0]![1];
  await client.del(keys.decisionLogStream);
  const writer = withScripts(client);
  for (let written = 0; written < o.replayDecisions; written += 1000) {
    await writer.p28AppendDecisions(keys.decisionLogStream, o.replayDecisions, ...Array.from({ length: Math.min(1000, o.replayDecisions - written) }, () => fields[1]!));
  }
  const length = await client.xlen(keys.decisionLogStream);
  const bytes = Number(await client.call('memory', 'usage', keys.decisionLogStream, 'SAMPLES', '0'));
  rows.push({ scenario: `decision log in Redis, ${length} entries`, metric: 'memory per entry', unit: 'bytes', value: bytes / length });

  const config = loadConfig({ REDIS_URL: server.url, LOG_LEVEL: 'silent' });
  log('decision log: replay');
  let started = performance.now();
  const summary = await replayCommand(client, config, { window: '1h', set: ['BASE_RISK_PCT=0.015'] }, () => undefined);
  const replaySeconds = (performance.now() - started) / 1000;
  if (summary.decisions !== length) throw new Error(`replay read ${summary.decisions} of ${length} decisions`);
  rows.push({ scenario: `replay --set BASE_RISK_PCT=0.015 over ${length} logged decisions`, metric: 'time', unit: 's', value: replaySeconds, target: `<= ${REPLAY_MAX_SECONDS} s`, met: replaySeconds <= REPLAY_MAX_SECONDS });
  log('decision log: readiness');
  started = performance.now();
  await readinessCommand(client, config, { window: '1h', json: true }, () => undefined);
  const readinessSeconds = (performance.now() - started) / 1000;
  rows.push({ scenario: `readiness over ${length} logged decisions`, metric: 'time', unit: 's', value: readinessSeconds, target: `<= ${REPLAY_MAX_SECONDS} s`, met: readinessSeconds <= REPLAY_MAX_SECONDS });
  await client.del(keys.decisionLogStream);
  client.disconnect();
  return rows;
}

/** `node --import tsx bench/decision-log-bench.ts [--quick]`: this bench alone, on a private redis-server. */
if (require.main === module) {
  const quick = process.argv.includes('--quick');
  void (async () => {
    const server = await LocalRedisServer.start();
    const started = Date.now();
    try {
      const rows = await runDecisionLogBench(server, quick ? { serialSamples: 2000, rounds: 2, pacedRounds: 3, replayDecisions: 50000, cpuDecisions: 20000 } : { serialSamples: 10000, rounds: 3, pacedRounds: 15, replayDecisions: 1000000, cpuDecisions: 100000 }, (s) =>
        process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${s}\n`),
      );
      console.log(`machine: ${JSON.stringify(machine())}\n\n${table(rows)}`);
    } finally {
      await server.stop();
    }
  })();
}
