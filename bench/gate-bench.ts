import 'reflect-metadata';
import { container as rootContainer } from 'tsyringe';
import { RedisKeys } from '../lib/redis/keys';
import type { LocalRedisServer } from '../test/support/local-redis-server';
import { createRedisClient, waitForReady } from '../lib/redis/client';
import { BUDGET_GATE_DEFAULTS } from '../plugin/gate-options';
import { registerBudgetGate } from '../plugin/register';
import { encodeBudgetHash } from '../types/budget-hash';
import type { GateDecision, PermitRequest } from '../types/permit';
import { budgetFixture } from '../test/support/budget-fixture';
import type { Row } from './report';
import { elapsedUs, interleaved, max, median, nowNs, percentile, throughput } from './stats';

const SYMBOL = 'BTCUSDT';
const keys = new RedisKeys();
const INCREASING: PermitRequest = { planId: 'bench', symbol: SYMBOL, action: 'OPEN', side: 'BUY', qty: 0.1 };
const REDUCING: PermitRequest = { planId: 'bench', symbol: SYMBOL, action: 'PARTIAL_50', reduceOnly: true };

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
  client.disconnect();
}

function expectReason(decision: GateDecision, reason: string, where: string): void {
  if (decision.reason !== reason) throw new Error(`${where}: expected ${reason}, got ${decision.reason} (${decision.detail ?? ''})`);
}

/**
 * The gate against raw ioredis HGETALL of the same key on the same server, both through a
 * connection with the gate's fail-fast settings and no auto-pipelining.
 */
export async function runGateBench(server: LocalRedisServer, o: GateBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  await seedOverBudget(server);
  const raw = createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 1000 });
  raw.on('error', () => undefined);
  await waitForReady(raw, 5000);
  const container = rootContainer.createChildContainer();
  const gate = registerBudgetGate(container, { redisUrl: server.url });
  await new Promise<void>((resolve) => {
    const poll = () => (gate.breakerState === 'closed' && raw.status === 'ready' ? resolve() : setTimeout(poll, 10));
    poll();
  });
  for (let i = 0; i < 50 && (await gate.evaluate(INCREASING)).reason !== 'p28_budget_violation'; i++) {
    await new Promise((r) => setTimeout(r, 20)); // the gate's own connection is still coming up
  }
  expectReason(await gate.evaluate(INCREASING), 'p28_budget_violation', 'warm-up');
  const key = keys.budget(SYMBOL);

  // Serial latency, warm connection.
  log('gate: serial latency');
  await interleaved(() => raw.hgetall(key), () => gate.evaluate(INCREASING), { samples: 500, block: 100 });
  const serial = await interleaved(() => raw.hgetall(key), () => gate.evaluate(INCREASING), { samples: o.serialSamples, block: 250 });
  for (const [q, name, limit] of [[0.5, 'p50', 1.3], [0.99, 'p99', undefined]] as const) {
    const value = percentile(serial.b, q);
    const baseline = percentile(serial.a, q);
    rows.push({
      scenario: 'gate, serial evaluate() vs raw HGETALL',
      metric: `latency ${name}`,
      unit: 'µs',
      value,
      baseline,
      ratio: value / baseline,
      target: limit ? `<= ${limit}x raw` : undefined,
      met: limit ? value / baseline <= limit : undefined,
    });
  }

  // Throughput at 16 and 256 concurrent callers, three alternating rounds each, median kept.
  for (const concurrency of [16, 256]) {
    log(`gate: throughput at ${concurrency} callers`);
    await seedOverBudget(server);
    const gateRuns: number[] = [];
    const rawRuns: number[] = [];
    for (let round = 0; round < 3; round++) {
      rawRuns.push(await throughput(() => raw.hgetall(key), concurrency, o.throughputOps));
      gateRuns.push(await throughput(() => gate.evaluate(INCREASING), concurrency, o.throughputOps));
    }
    expectReason(await gate.evaluate(INCREASING), 'p28_budget_violation', `throughput ${concurrency}`);
    const value = median(gateRuns);
    const baseline = median(rawRuns);
    rows.push({
      scenario: `gate, ${concurrency} concurrent callers vs raw HGETALL`,
      metric: 'throughput',
      unit: 'ops/s',
      value,
      baseline,
      ratio: value / baseline,
      target: concurrency === 256 ? '>= 0.7x raw' : undefined,
      met: concurrency === 256 ? value / baseline >= 0.7 : undefined,
    });
  }

  // A reducing plan: decided without I/O.
  log('gate: reducing plan');
  expectReason(await gate.evaluate(REDUCING), 'reduce_only', 'reducing');
  const emptyAsync = async () => undefined;
  let t = nowNs();
  for (let i = 0; i < o.reducingDecisions; i++) await emptyAsync();
  const emptyUs = elapsedUs(t) / o.reducingDecisions;
  t = nowNs();
  for (let i = 0; i < o.reducingDecisions; i++) await gate.evaluate(REDUCING);
  const reducingUs = elapsedUs(t) / o.reducingDecisions;
  rows.push({
    scenario: 'gate, reducing plan (no I/O) vs an empty async call',
    metric: 'time per decision',
    unit: 'µs',
    value: reducingUs,
    baseline: emptyUs,
    ratio: reducingUs / emptyUs,
    target: '< 20 µs',
    met: reducingUs < 20,
  });

  // Redis paused: every decision must come back within timeoutMs (+20 ms), through the timeouts,
  // the open breaker and a half-open trial. A gate with fresh breaker statistics: the one above
  // has tens of thousands of successes in its rolling window, so it would keep timing out (each
  // decision bounded by timeoutMs) for the whole window before opening.
  log(`gate: Redis paused for ${o.pausedSeconds} s`);
  await seedOverBudget(server);
  await gate.close();
  const fresh = registerBudgetGate(rootContainer.createChildContainer(), { redisUrl: server.url });
  for (let i = 0; i < 50 && (await fresh.evaluate(INCREASING)).reason !== 'p28_budget_violation'; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  expectReason(await fresh.evaluate(INCREASING), 'p28_budget_violation', 'fresh gate');
  const timeoutMs = BUDGET_GATE_DEFAULTS.timeoutMs;
  const latenciesMs: number[] = [];
  const reasons = new Map<string, number>();
  server.pause();
  const pausedUntil = Date.now() + o.pausedSeconds * 1000;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (Date.now() < pausedUntil) {
        const start = nowNs();
        const decision = await fresh.evaluate(INCREASING);
        latenciesMs.push(elapsedUs(start) / 1000);
        reasons.set(decision.reason, (reasons.get(decision.reason) ?? 0) + 1);
        if (!decision.allow) throw new Error('a paused Redis must never block');
        // Permits arrive as I/O events: yield to the event loop between them, or a caller whose
        // answer is ready at once would starve the timers that end the other callers' waits.
        await new Promise((r) => setImmediate(r));
      }
    }),
  );
  const worst = max(latenciesMs);
  rows.push({
    scenario: `gate, Redis paused (SIGSTOP) ${o.pausedSeconds} s, 16 callers`,
    metric: 'max decision latency',
    unit: 'ms',
    value: worst,
    baseline: timeoutMs,
    ratio: worst / timeoutMs,
    target: `<= timeoutMs + 20 = ${timeoutMs + 20} ms`,
    met: worst <= timeoutMs + 20,
  });

  // Breaker open (Redis still paused): decisions answered without touching Redis.
  log('gate: breaker open');
  for (let i = 0; i < 100 && fresh.breakerState !== 'open'; i++) await fresh.evaluate(INCREASING);
  expectReason(await fresh.evaluate(INCREASING), 'breaker_open', 'breaker open');
  t = nowNs();
  const n = Math.min(o.reducingDecisions, 20000);
  for (let i = 0; i < n; i++) await fresh.evaluate(INCREASING);
  const openUs = elapsedUs(t) / n;
  rows.push({
    scenario: 'gate, breaker open vs an empty async call',
    metric: 'time per decision',
    unit: 'µs',
    value: openUs,
    baseline: emptyUs,
    ratio: openUs / emptyUs,
    target: '< 20 µs',
    met: openUs < 20,
  });
  server.resume();

  await fresh.close();
  raw.disconnect();
  log(`gate: paused-phase reasons ${JSON.stringify(Object.fromEntries(reasons))}`);
  return rows;
}
