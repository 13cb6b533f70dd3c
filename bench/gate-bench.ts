import 'reflect-metadata';
import Redis from 'ioredis';
import { container as rootContainer } from 'tsyringe';
import { RedisKeys } from '../lib/redis/keys';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { BudgetGate as Gate } from '../plugin/budget-gate';
import { BUDGET_GATE_DEFAULTS, DEFAULT_DECISION_POLICY } from '../plugin/gate-options';
import { planScriptArgs } from '../plugin/plan-script';
import { withScripts } from '../lib/redis/lua-scripts';
import { registerBudgetGate } from '../plugin/register';
import { encodeBudgetHash } from '../types/budget-hash';
import type { GateDecision, PermitRequest } from '../types/permit';
import { budgetFixture } from '../dev/budget-fixture';
import { availablePlacements, withPlacement, type Placement } from './placement';
import { latencyRows, type Row } from './report';
import { elapsedUs, interleaved, max, median, nowNs, throughput } from './stats';

const SYMBOL = 'BTCUSDT';
const keys = new RedisKeys();
const INCREASING: PermitRequest = { planId: 'bench', symbol: SYMBOL, action: 'OPEN', side: 'BUY', qty: 0.1 };
const REDUCING: PermitRequest = { planId: 'bench', symbol: SYMBOL, action: 'PARTIAL_50', reduceOnly: true };
/** A symbol whose budget has room for every plan of the run: each one reserves its increase. */
const ROOMY = 'ROOMYUSDT';

/** Targets: the gate's cost over the raw read it cannot avoid, and the cost of a decision without one. */
const SERIAL_P50_MAX_RATIO = 1.15;
const RESERVING_P50_MAX_RATIO = 1.25;
const CONCURRENT_MIN_RATIO = 0.85;
const NO_READ_MAX_US = 3;

export interface GateBenchOptions {
  serialSamples: number;
  throughputOps: number;
  reducingDecisions: number;
  pausedSeconds: number;
}

/** A fresh over-budget hash in enforce mode: every increasing plan is blocked. */
async function seedOverBudget(server: LocalRedisServer): Promise<void> {
  const client = createRedisClient({ url: server.url, profile: 'worker' });
  await waitForReady(client, 5000);
  const nowSec = Math.floor(Date.now() / 1000);
  const fields = encodeBudgetHash(budgetFixture({ symbol: SYMBOL, mode: 'enforce', timestamp: nowSec, last_violation_ts: nowSec }));
  await client.multi().hset(keys.budget(SYMBOL), fields).expire(keys.budget(SYMBOL), 3600).exec();
  // A flat symbol with a budget no run exhausts, holding five live reservations of other plans.
  const roomy = encodeBudgetHash(budgetFixture({ symbol: ROOMY, mode: 'enforce', timestamp: nowSec, budget_usd: 1e12, position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 }));
  const others = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`other-${i}`, ['100', Date.now() + 3_600_000]]));
  await client.multi().hset(keys.budget(ROOMY), { ...roomy, reservations: JSON.stringify(others) }).expire(keys.budget(ROOMY), 3600).exec();
  client.disconnect();
}

/**
 * Serial samples of the gate, of the decision script called directly, and of raw HGETALL, each a
 * plan that reserves; and of a script that does nothing called with the same key and arguments:
 * the floor of any script call, whatever it does.
 */
interface ReservingSamples {
  hgetall: number[];
  gate: number[];
  script: number[];
  emptyScript: number[];
}

/** A script that does nothing: called with the decision script's key and arguments, it measures what every script call costs. */
const EMPTY_SCRIPT = 'return 1';

/**
 * Serial samples of a plan that reserves (each a new planId on the roomy symbol), interleaved in
 * blocks with raw HGETALL of the same hash and with the decision script called directly on the
 * raw client (the same arguments, no gate around it): what the script costs, apart from the gate.
 * Each plan is released after its sample, outside the timing, as a Governor releases a filled
 * plan: the number of live reservations stays at five.
 */
async function reservingSamples(gate: Gate, raw: RedisClient, samples: number, failOpen: Map<string, number>): Promise<ReservingSamples> {
  const key = keys.budget(ROOMY);
  const direct = withScripts(raw);
  const out: ReservingSamples = { hgetall: [], gate: [], script: [], emptyScript: [] };
  const emptySha = String(await raw.script('LOAD', EMPTY_SCRIPT));
  let n = 0;
  while (out.gate.length < samples) {
    for (let i = 0; i < 250; i++) {
      const t = nowNs();
      await raw.hgetall(key);
      out.hgetall.push(elapsedUs(t));
    }
    for (let i = 0; i < 250; i++) {
      const plan: PermitRequest = { planId: `reserve-${(n += 1)}`, symbol: ROOMY, action: 'OPEN', side: 'BUY', notionalUsd: 100 };
      const t = nowNs();
      const decision = await gate.evaluate(plan);
      out.gate.push(elapsedUs(t));
      // A loaded host can stall a read past timeoutMs: a fail-open, counted and reported, never a block.
      if (decision.failOpen) failOpen.set(decision.reason, (failOpen.get(decision.reason) ?? 0) + 1);
      else if (decision.reason !== 'within_budget') throw new Error(`reserving plan: expected within_budget, got ${decision.reason} (${decision.detail ?? ''})`);
      await gate.release(plan.planId, ROOMY);
    }
    for (let i = 0; i < 250; i++) {
      const planId = `direct-${(n += 1)}`;
      const args = planScriptArgs({ planId, symbol: ROOMY, action: 'OPEN', side: 'BUY', notionalUsd: 100 }, Date.now(), DEFAULT_DECISION_POLICY, BUDGET_GATE_DEFAULTS.reservationTtlMs, false);
      const t = nowNs();
      const reply = await direct.p28DecidePlan(key, ...args);
      out.script.push(elapsedUs(t));
      if (reply[0] !== 'within_budget') throw new Error(`reserving plan, direct script call: expected within_budget, got ${reply[0]}`);
      await direct.p28ReleaseReservation(key, planId);
    }
    for (let i = 0; i < 250; i++) {
      const args = planScriptArgs({ planId: `empty-${(n += 1)}`, symbol: ROOMY, action: 'OPEN', side: 'BUY', notionalUsd: 100 }, Date.now(), DEFAULT_DECISION_POLICY, BUDGET_GATE_DEFAULTS.reservationTtlMs, false);
      const t = nowNs();
      await raw.evalsha(emptySha, 1, key, ...args);
      out.emptyScript.push(elapsedUs(t));
    }
  }
  return out;
}

/** Microseconds of Redis CPU the server counted for `command` so far (INFO commandstats). */
async function commandUsec(client: RedisClient, command: string): Promise<number> {
  const info = await client.info('commandstats');
  const match = new RegExp(`cmdstat_${command}:calls=\\d+,usec=(\\d+)`).exec(info);
  return match ? Number(match[1]) : 0;
}

/**
 * Redis CPU (INFO commandstats, read around blocks of calls, so that INFO's own work stays out) of
 * a plan that reserves and its release (two script calls), and of HGETALL of the same hash: the
 * server's share of each round trip.
 */
async function serverCpuRow(raw: RedisClient, calls: number, at: string): Promise<Row> {
  const key = keys.budget(ROOMY);
  const direct = withScripts(raw);
  let pairs = 0;
  let hgetall = 0;
  for (let done = 0; done < calls; done += 250) {
    const before = await commandUsec(raw, 'evalsha');
    for (let i = 0; i < 250; i++) {
      const planId = `cpu-${done + i}`;
      const args = planScriptArgs({ planId, symbol: ROOMY, action: 'OPEN', side: 'BUY', notionalUsd: 100 }, Date.now(), DEFAULT_DECISION_POLICY, BUDGET_GATE_DEFAULTS.reservationTtlMs, false);
      await direct.p28DecidePlan(key, ...args);
      await direct.p28ReleaseReservation(key, planId);
    }
    pairs += (await commandUsec(raw, 'evalsha')) - before;
    const read = await commandUsec(raw, 'hgetall');
    for (let i = 0; i < 250; i++) await raw.hgetall(key);
    hgetall += (await commandUsec(raw, 'hgetall')) - read;
  }
  return { scenario: `Redis CPU (INFO commandstats): a plan that reserves and its release (two script calls) vs one HGETALL${at}`, metric: 'server time per plan', unit: 'µs', value: pairs / calls, baseline: hgetall / calls, ratio: pairs / hgetall };
}

function expectReason(decision: GateDecision, reason: string, where: string): void {
  if (decision.reason !== reason) throw new Error(`${where}: expected ${reason}, got ${decision.reason} (${decision.detail ?? ''})`);
}

/** Mean µs per call of `op`, run `n` times one after another. */
async function perCallUs(op: () => Promise<unknown>, n: number): Promise<number> {
  const t = nowNs();
  for (let i = 0; i < n; i++) await op();
  return elapsedUs(t) / n;
}

/** A gate with its own default client, connected, over-budget plans blocking. */
async function readyGate(server: LocalRedisServer): Promise<Gate> {
  // The decision log is off here: what it adds to a decision is measured on its own, against this
  // same gate without it, in decision-log-bench.ts.
  const gate = registerBudgetGate(rootContainer.createChildContainer(), { redisUrl: server.url, decisionLogMaxLen: 0 });
  await gate.ready();
  expectReason(await gate.evaluate(INCREASING), 'p28_budget_violation', 'warm-up');
  return gate;
}

/**
 * The gate against raw ioredis on the same server, under each core placement the machine allows
 * (bench and redis-server on one core, then on two): serial latency against a raw HGETALL, 256
 * callers against a raw auto-pipelined HGETALL, the cost of a decision that needs no read
 * (reducing plan, open breaker), and a freeze of Redis under 16 callers.
 */
export async function runGateBench(server: LocalRedisServer, o: GateBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  await seedOverBudget(server);
  rows.push(await cpuOnly(o.reducingDecisions, log));
  for (const placement of availablePlacements()) {
    log(`gate: placement ${placement.name}`);
    rows.push(...(await withPlacement(placement, server.pid, () => measure(server, placement, o, log))));
  }
  return rows;
}

async function measure(server: LocalRedisServer, placement: Placement, o: GateBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const at = `, ${placement.name}`;
  const rows: Row[] = [];
  const raw = createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 1000 });
  const rawAuto = new Redis({ host: '127.0.0.1', port: server.port, enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, protocol: 2 });
  for (const client of [raw, rawAuto]) {
    client.on('error', () => undefined);
    await waitForReady(client, 5000);
  }
  const gate = await readyGate(server);
  const key = keys.budget(SYMBOL);
  try {
    // Reseeded before each scenario: the hash must stay younger than staleAfterMs for the whole run.
    await seedOverBudget(server);
    log(`gate: serial latency${at}`);
    await interleaved(() => raw.hgetall(key), () => gate.evaluate(INCREASING), { samples: 500, block: 100 });
    const serial = await interleaved(() => raw.hgetall(key), () => gate.evaluate(INCREASING), { samples: o.serialSamples, block: 250 });
    rows.push(...latencyRows(`gate, serial evaluate() of a blocked plan vs raw HGETALL${at}`, 'µs', serial, { p50: { maxRatio: SERIAL_P50_MAX_RATIO } }));
    log(`gate: serial latency of a plan that reserves${at}`);
    const reservingFailOpen = new Map<string, number>();
    await reservingSamples(gate, raw, 500, reservingFailOpen);
    const reserving = await reservingSamples(gate, raw, o.serialSamples, reservingFailOpen);
    if (reservingFailOpen.size > 0) log(`gate: fail-open decisions of the reserving plan${at}: ${JSON.stringify(Object.fromEntries(reservingFailOpen))}`);
    await untilBreakerClosed(gate, log);
    rows.push(...latencyRows(`gate, serial evaluate() of a plan that reserves vs raw HGETALL${at}`, 'µs', { a: reserving.hgetall, b: reserving.gate }, { p50: { maxRatio: RESERVING_P50_MAX_RATIO } }));
    // Where the reserving plan's time goes: the script itself, called without the gate, the floor
    // of any script call, and the script's Redis CPU.
    rows.push(...latencyRows(`decision script called directly (no gate), a plan that reserves, vs raw HGETALL${at}`, 'µs', { a: reserving.hgetall, b: reserving.script }));
    rows.push(...latencyRows(`a script that does nothing, called with the decision script's key and arguments, vs raw HGETALL${at}`, 'µs', { a: reserving.hgetall, b: reserving.emptyScript }));
    rows.push(await serverCpuRow(raw, 2000, at));

    // Throughput: 16 callers against plain HGETALL, 256 against auto-pipelined HGETALL (what a
    // client tuned for throughput reaches); three alternating rounds each, median kept.
    for (const [concurrency, baselineClient, baselineName, limit] of [
      [16, raw, 'raw HGETALL', undefined],
      [256, rawAuto, 'raw auto-pipelined HGETALL', CONCURRENT_MIN_RATIO],
    ] as const) {
      log(`gate: throughput at ${concurrency} callers${at}`);
      await seedOverBudget(server);
      const gateRuns: number[] = [];
      const rawRuns: number[] = [];
      const failOpen = new Map<string, number>();
      const decide = async () => {
        const decision = await gate.evaluate(INCREASING);
        if (decision.failOpen) failOpen.set(decision.reason, (failOpen.get(decision.reason) ?? 0) + 1);
      };
      for (let round = 0; round < 3; round++) {
        rawRuns.push(await throughput(() => baselineClient.hgetall(key), concurrency, o.throughputOps));
        gateRuns.push(await throughput(decide, concurrency, o.throughputOps));
      }
      // A loaded host can stall a read past timeoutMs; such decisions fail open (never block) and
      // are reported here rather than hidden.
      if (failOpen.size > 0) log(`gate: fail-open decisions at ${concurrency} callers${at}: ${JSON.stringify(Object.fromEntries(failOpen))}`);
      await untilBreakerClosed(gate, log);
      expectReason(await gate.evaluate(INCREASING), 'p28_budget_violation', `throughput ${concurrency}`);
      const value = median(gateRuns);
      const baseline = median(rawRuns);
      rows.push({
        scenario: `gate, ${concurrency} concurrent callers vs ${baselineName}${at}`,
        metric: 'throughput',
        unit: 'ops/s',
        value,
        baseline,
        ratio: value / baseline,
        target: limit ? `>= ${limit}x raw` : undefined,
        met: limit ? value / baseline >= limit : undefined,
      });
    }

    log(`gate: reducing plan${at}`);
    expectReason(await gate.evaluate(REDUCING), 'reduce_only', 'reducing');
    const emptyAsync = async () => undefined;
    await perCallUs(emptyAsync, o.reducingDecisions);
    const emptyUs = await perCallUs(emptyAsync, o.reducingDecisions);
    await perCallUs(() => gate.evaluate(REDUCING), o.reducingDecisions);
    const reducingUs = await perCallUs(() => gate.evaluate(REDUCING), o.reducingDecisions);
    rows.push(noReadRow(`gate, reducing plan (no I/O) vs an empty async call${at}`, reducingUs, emptyUs));

    // Redis frozen under 16 callers, on the gate that has just served every read above (tens of
    // thousands of successes in its rolling window): the breaker must open within a second and
    // every decision come back within timeoutMs (+20 ms).
    log(`gate: Redis paused for ${o.pausedSeconds} s${at}`);
    await seedOverBudget(server);
    expectReason(await gate.evaluate(INCREASING), 'p28_budget_violation', 'before the pause');
    const timeoutMs = BUDGET_GATE_DEFAULTS.timeoutMs;
    const latenciesMs: number[] = [];
    const reasons = new Map<string, number>();
    let openedAfterMs = Number.NaN;
    server.pause();
    const pausedAt = Date.now();
    const pausedUntil = pausedAt + o.pausedSeconds * 1000;
    try {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (Date.now() < pausedUntil) {
            const start = nowNs();
            const decision = await gate.evaluate(INCREASING);
            latenciesMs.push(elapsedUs(start) / 1000);
            reasons.set(decision.reason, (reasons.get(decision.reason) ?? 0) + 1);
            if (!decision.allow) throw new Error('a paused Redis must never block');
            if (Number.isNaN(openedAfterMs) && gate.breakerState === 'open') openedAfterMs = Date.now() - pausedAt;
            // Permits arrive as I/O events: yield to the event loop between them, or a caller whose
            // answer is ready at once would starve the timers that end the other callers' waits.
            await new Promise((r) => setImmediate(r));
          }
        }),
      );
      const worst = max(latenciesMs);
      rows.push({
        scenario: `gate, Redis paused (SIGSTOP) ${o.pausedSeconds} s, 16 callers${at}`,
        metric: 'max decision latency',
        unit: 'ms',
        value: worst,
        baseline: timeoutMs,
        ratio: worst / timeoutMs,
        target: `<= timeoutMs + 20 = ${timeoutMs + 20} ms`,
        met: worst <= timeoutMs + 20,
      });
      rows.push({
        scenario: `gate, Redis paused (SIGSTOP) after full-speed traffic${at}`,
        metric: 'time until the breaker opens',
        unit: 'ms',
        value: Number.isNaN(openedAfterMs) ? o.pausedSeconds * 1000 : openedAfterMs,
        target: '<= 1000 ms',
        met: !Number.isNaN(openedAfterMs) && openedAfterMs <= 1000,
      });
      log(`gate: paused-phase reasons ${JSON.stringify(Object.fromEntries(reasons))}`);

      log(`gate: breaker open${at}`);
      expectReason(await gate.evaluate(INCREASING), 'breaker_open', 'breaker open');
      const n = Math.min(o.reducingDecisions, 50000);
      await perCallUs(() => gate.evaluate(INCREASING), n);
      const openUs = await perCallUs(() => gate.evaluate(INCREASING), n);
      rows.push(noReadRow(`gate, breaker open vs an empty async call${at}`, openUs, emptyUs));
    } finally {
      server.resume();
    }
  } finally {
    await gate.close();
    raw.disconnect();
    rawAuto.disconnect();
  }
  return rows;
}

/** Waits out a breaker a stall of the host has opened, so the next scenario starts from a closed one. */
async function untilBreakerClosed(gate: Gate, log: (s: string) => void): Promise<void> {
  if (gate.breakerState === 'closed') return;
  log(`gate: breaker ${gate.breakerState} after a healthy phase (host stall); waiting for it to close`);
  for (let state: string = gate.breakerState; state !== 'closed'; state = gate.breakerState) {
    await new Promise((r) => setTimeout(r, 100));
    await gate.evaluate(INCREASING);
  }
}

function noReadRow(scenario: string, valueUs: number, emptyUs: number): Row {
  return {
    scenario,
    metric: 'time per decision',
    unit: 'µs',
    value: valueUs,
    baseline: emptyUs,
    ratio: valueUs / emptyUs,
    target: `<= ${NO_READ_MAX_US} µs`,
    met: valueUs <= NO_READ_MAX_US,
  };
}

/**
 * The gate's own CPU per decision, without Redis: a client whose decision script answers at once
 * with the reply for a blocking hash, against that bare script call. On a shared machine this is the
 * steadiest figure of the gate's overhead, as no round trip's noise is in it.
 */
async function cpuOnly(n: number, log: (s: string) => void): Promise<Row> {
  log('gate: CPU per decision with a read answered at once');
  const nowSec = Math.floor(Date.now() / 1000);
  const fields = encodeBudgetHash(budgetFixture({ symbol: SYMBOL, mode: 'enforce', timestamp: nowSec, last_violation_ts: nowSec }));
  // The decision script's reply for that hash, answered at once.
  const reply = ['p28_budget_violation', 'recent_violation', 'enforce', fields.budget_usd!, fields.position_notional_usd!, '51000', '0'];
  const instant = {
    status: 'ready',
    options: { commandTimeout: BUDGET_GATE_DEFAULTS.timeoutMs },
    defineCommand: () => undefined,
    p28DecidePlan: () => Promise.resolve(reply),
    on: () => instant,
    once: () => instant,
    off: () => instant,
  } as unknown as RedisClient;
  const gate = new Gate({ redis: instant, decisionLogMaxLen: 0 });
  expectReason(await gate.evaluate(INCREASING), 'p28_budget_violation', 'cpu only');
  const bare = () => (instant as unknown as { p28DecidePlan: (...args: string[]) => Promise<unknown> }).p28DecidePlan(keys.budget(SYMBOL), ...new Array<string>(12).fill(''));
  const runs: Array<[number, number]> = [];
  for (let round = 0; round < 3; round++) runs.push([await perCallUs(bare, n), await perCallUs(() => gate.evaluate(INCREASING), n)]);
  await gate.close();
  const overhead = median(runs.map(([b, g]) => g - b));
  return { scenario: 'gate, CPU per decision with an instant read (no Redis) minus the bare read', metric: 'time per decision', unit: 'µs', value: overhead, baseline: median(runs.map(([b]) => b)) };
}
