import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { container as rootContainer } from 'tsyringe';
import type { CycleOutline, CycleWorkerView } from '../lib/worker/cycle-thread-protocol';
import { loadConfig, type WorkerConfig } from '../lib/config';
import { readinessCommand } from '../lib/commands/readiness-command';
import { replayCommand } from '../lib/commands/replay-command';
import { redactUrl } from '../lib/redis/client';
import { scanKeys } from '../lib/redis/key-scanner';
import { RedisKeys } from '../lib/redis/keys';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { startWorkerService } from '../lib/worker/worker-service';
import { BUDGET_GATE_DEFAULTS } from '../plugin/gate-options';
import { PermitPipeline } from '../plugin/permit-pipeline';
import { registerBudgetGate } from '../plugin/register';
import { BudgetHash } from '../types/budget-hash';
import type { Mode } from '../types/mode';
import type { GateDecision } from '../types/permit';
import { CleanupStack } from './cleanup-stack';
import { DemoSetupError, openDemoRedis } from './demo-redis';
import { HeatGateStub } from '../dev/heat-gate-stub';
import { BTC_ADD_OVER_BUDGET, BUDGET_SYMBOLS, DEMO_PLANS, ETH_ADD_ABOVE_TEST1, SCENARIO, planLabel, seedScenario, type DemoPlan } from './scenario';
import { formatTable, type Column } from './table';

/**
 * `npm run demo`: the worker, the gate and a Governor-style permit pipeline working together
 * against a private redis-server and a stand-in P2.6 Heat Gate: the guide's Test 1 and Test 2
 * budgets, a handful of permits in shadow and then in enforce mode (switched at run time), and
 * the gate failing open while Redis is frozen. Everything it starts is stopped again on the way
 * out, also on an error or Ctrl-C.
 */

/** Worker cycle period: short, so the demo does not wait long for each switch to land. */
const INTERVAL_SEC = 0.5;
/**
 * The breaker's pause before a trial read after it opened. The default (5000 ms) suits production;
 * the demo shortens it so that it can show the gate reading Redis again without a long wait.
 */
const GATE_RESET_TIMEOUT_MS = 1000;
/** Longest wait for any step (budgets written, a switch applied); past it the demo fails. */
const STEP_LIMIT_MS = 15000;
/** Plans sent while Redis is frozen, at most: enough for the breaker to open. */
const MAX_FROZEN_PLANS = 40;
/** Answers of the open breaker to show before resuming Redis. */
const BREAKER_OPEN_SHOWN = 3;
const EXIT = Object.freeze({ ok: 0, failure: 1, SIGINT: 130, SIGTERM: 143 });
/** The window `readiness` and `replay` look back over in the demo: all of its shadow phase. */
const READINESS_WINDOW = '1m';
/** The candidate the demo replays: a larger share of equity per position (budget 2022 at heat 0.65). */
const REPLAY_SETTING = 'BASE_RISK_PCT=0.03';

let stdoutClosed = false;
let stepsSilenced = false;
const write = (line: string): void => {
  if (!stdoutClosed) process.stdout.write(`${line}\n`);
};
/**
 * A line of the demo's steps. Silent once the demo is being stopped (a step still running may
 * finish after the cleanup summary) and once stdout's reader has gone (`npm run demo | head`):
 * the demo still cleans up.
 */
const print = (line = ''): void => {
  if (!stepsSilenced) write(line);
};
process.stdout.on('error', () => {
  stdoutClosed = true;
});
const nowSec = (): number => Math.floor(Date.now() / 1000);
const round = (value: number, digits: number): string => String(Math.round(value * 10 ** digits) / 10 ** digits);

/** `label  text` lines with the texts aligned. */
function printPairs(pairs: readonly [string, string][]): void {
  const width = Math.max(...pairs.map(([label]) => label.length));
  for (const [label, text] of pairs) print(`  ${label.padEnd(width)}  ${text}`);
}

/** Polls `check` until it holds; `explain` adds what is known about why, should it never hold. */
async function waitUntil(what: string, check: () => Promise<boolean>, stepMs = 25, explain?: () => string): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > STEP_LIMIT_MS) {
      throw new Error(`no ${what} within ${STEP_LIMIT_MS / 1000} s${explain ? `; ${explain()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return performance.now() - started;
}

/** The budget hash of each scenario symbol, parsed (undefined where missing or not yet valid). */
async function readBudgets(client: RedisClient, keys: RedisKeys): Promise<(BudgetHash | undefined)[]> {
  const raw = await Promise.all(BUDGET_SYMBOLS.map((symbol) => client.hgetall(keys.budget(symbol))));
  return raw.map((fields) => {
    const parsed = BudgetHash.safeParse(fields);
    return parsed.success ? parsed.data : undefined;
  });
}

/** The worker's latest cycle in one line, for an error message. */
function describeCycle(report: CycleOutline | undefined): string {
  if (!report) return 'the worker has not finished a cycle';
  const { result, role, mode, portfolio, heat, written, skipped, error } = report;
  const parts = [`result=${result}`, `role=${role}`, `mode=${mode}`, `portfolio=${portfolio.source}${portfolio.problem ? ` (${portfolio.problem})` : ''}`];
  if (heat) parts.push(`heat=${heat.value} (${heat.source}${heat.failure ? `, ${heat.failure}` : ''})`);
  parts.push(`written=${written.length}`, `skipped=${skipped.length}`);
  if (error) parts.push(`error=${error}`);
  return `last worker cycle: ${parts.join(', ')}`;
}

async function budgetsWhere(
  client: RedisClient,
  keys: RedisKeys,
  worker: CycleWorkerView,
  what: string,
  match: (b: BudgetHash) => boolean,
): Promise<number> {
  return waitUntil(what, async () => (await readBudgets(client, keys)).every((b) => b !== undefined && match(b)), 25, () => describeCycle(worker.lastCycle));
}

const BUDGET_COLUMNS: Column[] = [
  { header: 'symbol' },
  { header: 'heat', align: 'right' },
  { header: 'stress', align: 'right' },
  { header: 'budget', align: 'right' },
  { header: 'notional', align: 'right' },
  { header: 'over budget', align: 'right' },
  { header: 'mode' },
];

async function printBudgets(client: RedisClient, keys: RedisKeys): Promise<void> {
  const rows = (await readBudgets(client, keys)).flatMap((b) =>
    b ? [[b.symbol, String(b.portfolio_heat), String(b.stress_factor), String(b.budget_usd), String(b.position_notional_usd), String(b.over_budget_usd), b.mode]] : [],
  );
  formatTable(BUDGET_COLUMNS, rows).forEach((line) => print(line));
}

const PERMIT_COLUMNS: Column[] = [
  { header: 'symbol' },
  { header: 'plan' },
  { header: 'decision' },
  { header: 'reason' },
  { header: 'budget', align: 'right' },
  { header: 'notional', align: 'right' },
  { header: 'after plan', align: 'right' },
];

function decisionLabel(decision: GateDecision | null): string {
  if (!decision) return 'gate error';
  if (!decision.allow) return 'BLOCK';
  return decision.failOpen ? 'allow (fail-open)' : 'allow';
}

/** A USD figure to the cent, without float noise (`900`, not `900.0000000000001`). */
const figure = (value: number | undefined): string => (value === undefined ? '-' : round(value, 2));

let planCounter = 0;

/** Sends `plans` through the pipeline and prints one row per decision. */
async function sendPlans(pipeline: PermitPipeline, plans: readonly DemoPlan[]): Promise<void> {
  const rows: string[][] = [];
  for (const plan of plans) {
    planCounter += 1;
    const planId = `demo-${planCounter}`;
    const result = await pipeline.evaluate({ planId, ...plan });
    // A demo plan is never sent: free the headroom it reserved, as a Governor does for a plan it drops.
    await Promise.all(pipeline.gates.map((gate) => gate.release?.(planId, plan.symbol)));
    const decision = result.decisions[0]?.decision ?? null;
    rows.push([
      plan.symbol,
      planLabel(plan),
      decisionLabel(decision),
      decision?.reason ?? '-',
      figure(decision?.budgetUsd),
      figure(decision?.positionNotionalUsd),
      figure(decision?.projectedNotionalUsd),
    ]);
  }
  formatTable(PERMIT_COLUMNS, rows).forEach((line) => print(line));
}

async function switchMode(client: RedisClient, keys: RedisKeys, worker: CycleWorkerView, mode: Mode): Promise<void> {
  print(`Switch to ${mode} at run time: SET ${keys.modeOverride} ${mode}   (what \`p28-worker mode ${mode}\` does)`);
  await client.set(keys.modeOverride, mode);
  const tookMs = await budgetsWhere(client, keys, worker, `mode=${mode} in the budget hashes`, (b) => b.mode === mode);
  print(`  every budget hash said mode=${mode} ${Math.round(tookMs)} ms later; the worker was not restarted`);
}

interface FrozenAnswer {
  reason: string;
  decision: string;
  latencyMs: number;
}

/** Runs of equal answers: `1-9  allow (fail-open)  timeout  50.6-52.1 ms`. */
function groupAnswers(answers: readonly FrozenAnswer[]): string[][] {
  const rows: string[][] = [];
  let start = 0;
  for (let i = 1; i <= answers.length; i += 1) {
    const first = answers[start]!;
    if (i < answers.length && answers[i]!.reason === first.reason && answers[i]!.decision === first.decision) continue;
    const run = answers.slice(start, i).map((a) => a.latencyMs);
    const [low, high] = [Math.min(...run), Math.max(...run)];
    const plans = i - start === 1 ? String(start + 1) : `${start + 1}-${i}`;
    const latency = low === high ? `${low.toFixed(1)} ms` : `${low.toFixed(1)}-${high.toFixed(1)} ms`;
    rows.push([plans, first.decision, first.reason, latency]);
    start = i;
  }
  return rows;
}

/** Freezes Redis (SIGSTOP) and shows the gate answering within its timeout, then thaws it. */
async function showFailOpen(server: LocalRedisServer, pipeline: PermitPipeline): Promise<void> {
  const plan = BTC_ADD_OVER_BUDGET;
  const label = `${plan.symbol} ${planLabel(plan)}`;
  print(`Redis frozen (SIGSTOP to pid ${server.pid}); the ${label} blocked above, sent again and again:`);
  print(`each read gives up after timeoutMs (${BUDGET_GATE_DEFAULTS.timeoutMs} ms) and fails open, until the breaker opens and answers at once`);
  const answers: FrozenAnswer[] = [];
  server.pause();
  try {
    while (answers.length < MAX_FROZEN_PLANS && answers.filter((a) => a.reason === 'breaker_open').length < BREAKER_OPEN_SHOWN) {
      planCounter += 1;
      const started = performance.now();
      const result = await pipeline.evaluate({ planId: `demo-${planCounter}`, ...plan });
      const latencyMs = performance.now() - started;
      const decision = result.decisions[0]?.decision ?? null;
      answers.push({ reason: decision?.reason ?? '-', decision: decisionLabel(decision), latencyMs });
    }
  } finally {
    server.resume();
  }
  formatTable([{ header: 'plans' }, { header: 'decision' }, { header: 'reason' }, { header: 'latency', align: 'right' }], groupAnswers(answers)).forEach(
    (line) => print(line),
  );

  let reason = '';
  const tookMs = await waitUntil(
    'budget decision after Redis resumed',
    async () => {
      planCounter += 1;
      const decision = (await pipeline.evaluate({ planId: `demo-${planCounter}`, ...plan })).decisions[0]?.decision;
      reason = decision?.reason ?? '';
      return decision !== undefined && decision !== null && !decision.failOpen;
    },
    50,
  );
  print(`Redis resumed (SIGCONT): ${(tookMs / 1000).toFixed(1)} s later the breaker's trial read got through and the gate judges again: ${reason}`);
  print(`  (the breaker's resetTimeoutMs is ${GATE_RESET_TIMEOUT_MS} ms in this demo, ${BUDGET_GATE_DEFAULTS.resetTimeoutMs} ms by default)`);
}

/** Indented lines of a command's output, without blank lines, so the step stays one paragraph. */
function printIndented(text: string): void {
  for (const line of text.split('\n')) if (line.trim() !== '') print(`  ${line}`);
}

/**
 * What an operator asks before switching to enforce, on the shadow phase just run: `readiness`
 * (which says not ready: seconds of history are not the window asked for) and `replay` of the
 * logged decisions under another BASE_RISK_PCT.
 */
async function showReadinessAndReplay(client: RedisClient, keys: RedisKeys, config: WorkerConfig, decisions: number): Promise<void> {
  await waitUntil('decisions in the decision log', async () => (await client.xlen(keys.decisionLogStream)) >= decisions);
  let report = '';
  const code = await readinessCommand(client, config, { window: READINESS_WINDOW }, (text) => (report += text));
  print(`Readiness of the shadow phase: \`p28-worker readiness --window ${READINESS_WINDOW}\` (exit ${code}, ${code === 0 ? 'ready' : 'not ready'})`);
  printIndented(report);
  print();
  let replay = '';
  await replayCommand(client, config, { window: READINESS_WINDOW, set: [REPLAY_SETTING] }, (text) => (replay += text));
  print(`What if: the shadow phase's decisions judged again, \`p28-worker replay --window ${READINESS_WINDOW} --set ${REPLAY_SETTING}\``);
  printIndented(replay);
  print();
}

/**
 * Makes sure the server answering on the private port is the one the demo started, before
 * anything is written: should another redis-server have taken the port in the moment between
 * choosing it and starting ours, the demo stops rather than write into a server it does not own.
 */
async function expectOwnServer(client: RedisClient, server: LocalRedisServer): Promise<void> {
  const pid = /^process_id:(\d+)/m.exec(await client.info('server'))?.[1];
  if (pid !== String(server.pid)) {
    throw new DemoSetupError(`port ${server.port} is answered by another redis-server (pid ${pid ?? 'unknown'}), not the demo's own (pid ${server.pid}); run the demo again`);
  }
}

async function deleteDemoKeys(client: RedisClient, keys: RedisKeys): Promise<void> {
  const { keys: found } = await scanKeys(client, `${keys.prefix}:*`, 1000);
  for (const key of found) await client.unlink(key);
}

async function runDemo(cleanup: CleanupStack): Promise<void> {
  print('P2.8 Portfolio Risk Governor: demo');
  print();

  const redis = await openDemoRedis(process.env);
  const { server } = redis;
  if (server) cleanup.add(`stopped redis-server (pid ${server.pid})`, () => server.stop());
  const keys = new RedisKeys(redis.keyPrefix);
  const client = createRedisClient({ url: redis.url, profile: 'worker', connectionName: 'p28-demo' });
  client.on('error', () => undefined);
  cleanup.add('closed the demo Redis connection', () => client.disconnect());
  try {
    await waitForReady(client, 5000);
  } catch (error) {
    throw new DemoSetupError(`cannot reach Redis at ${redactUrl(redis.url)}: ${(error as Error).message}`);
  }
  if (server) await expectOwnServer(client, server);
  if (!server) cleanup.add(`deleted the demo keys (${keys.prefix}:*)`, () => deleteDemoKeys(client, keys));

  const heat = await HeatGateStub.start();
  cleanup.add('stopped the P2.6 heat stub', () => heat.close());
  heat.serveHeat(SCENARIO.heat.test1);
  await seedScenario(client, keys, nowSec());

  const config = loadConfig({
    P28_MODE: 'shadow',
    REDIS_URL: redis.url,
    P28_KEY_PREFIX: keys.prefix,
    BUDGET_COMPUTE_INTERVAL_SEC: String(INTERVAL_SEC),
    HEAT_GATE_METRICS_URL: heat.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    P28_INSTANCE_ID: 'p28-demo',
  });
  const service = await startWorkerService(config, { processMetrics: false });
  cleanup.add('stopped the worker', () => service.stop());

  const gates = rootContainer.createChildContainer();
  const gate = registerBudgetGate(gates, { redisUrl: redis.url, keyPrefix: keys.prefix, resetTimeoutMs: GATE_RESET_TIMEOUT_MS });
  cleanup.add('closed the permit gate', () => gates.dispose());
  const pipeline = PermitPipeline.fromContainer(gates);

  const positions = SCENARIO.positions.map((p) => `${p.symbol} ${p.positionAmt} @ ${p.entryPrice}`).join(', ');
  print('Setup');
  printPairs([
    ['Redis', server ? `private redis-server on 127.0.0.1:${server.port} (pid ${server.pid}), keys ${keys.prefix}:*` : `${redactUrl(redis.url)} (REDIS_URL), keys ${keys.prefix}:* only`],
    ['Heat gate', `P2.6 stand-in at ${heat.url}, p26_heat_value ${SCENARIO.heat.test1}`],
    ['Worker', `in-process, a cycle every ${INTERVAL_SEC} s, P28_MODE=${config.mode}, /metrics on http://127.0.0.1:${service.port}/metrics`],
    ['Gate', `${gate.name} in a PermitPipeline (tsyringe child container), timeoutMs ${BUDGET_GATE_DEFAULTS.timeoutMs}`],
    ['Portfolio', `equity ${SCENARIO.equityUsd} USD; ${positions}; vol ${SCENARIO.volRegime} (1-minute sigma ${SCENARIO.sigma}); cluster stress ${SCENARIO.clusterStress}`],
    ['Tracked', `${SCENARIO.tracked.join(', ')}: a market hash, no position (a flat budget hash, so an OPEN is judged)`],
  ]);
  print();

  await budgetsWhere(client, keys, service.worker, 'budgets at heat 0.65', (b) => b.portfolio_heat === SCENARIO.heat.test1);
  print(`Budgets at heat ${SCENARIO.heat.test1} (guide Test 1: 2000 * (1 - 0.326) = 1348)`);
  await printBudgets(client, keys);
  print();

  print('Permits in shadow mode: nothing is blocked; plans over budget pass as shadow_would_block');
  await sendPlans(pipeline, DEMO_PLANS);
  print();

  await showReadinessAndReplay(client, keys, config, DEMO_PLANS.length);

  await switchMode(client, keys, service.worker, 'enforce');
  print();
  print('Permits in enforce mode: the same plans; those over budget are blocked');
  await sendPlans(pipeline, DEMO_PLANS);
  print();

  heat.serveHeat(SCENARIO.heat.test2);
  await budgetsWhere(client, keys, service.worker, 'budgets at heat 0.15', (b) => b.portfolio_heat === SCENARIO.heat.test2);
  print(`Heat falls to ${SCENARIO.heat.test2}: budgets grow (guide Test 2: 2000 * (1 - 0.126) = 1748)`);
  await printBudgets(client, keys);
  print(`The ${ETH_ADD_ABOVE_TEST1.symbol} ${planLabel(ETH_ADD_ABOVE_TEST1)} blocked at 1348 fits the larger budget:`);
  await sendPlans(pipeline, [ETH_ADD_ABOVE_TEST1]);
  print();

  if (server) {
    await showFailOpen(server, pipeline);
  } else {
    print('Redis pause skipped: REDIS_URL names a server this demo does not own, so it does not freeze it (SIGSTOP).');
    print('Without REDIS_URL the demo starts its own redis-server and shows the gate failing open here.');
  }
  print();
}

async function main(): Promise<void> {
  const cleanup = new CleanupStack();
  let exiting = false;
  const finish = async (code: number, error?: unknown): Promise<void> => {
    if (exiting) return;
    exiting = true;
    stepsSilenced = true;
    if (error instanceof DemoSetupError) process.stderr.write(`${error.message}\n`);
    else if (error) process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    const done = cleanup.names;
    const failed = await cleanup.run();
    const succeeded = done.filter((name) => !failed.some((f) => f.startsWith(`${name}:`)));
    if (succeeded.length > 0) write(`Cleaned up: ${succeeded.join(', ')}.`);
    for (const failure of failed) process.stderr.write(`cleanup failed: ${failure}\n`);
    process.exit(code === EXIT.ok && failed.length > 0 ? EXIT.failure : code);
  };
  // Every signal is handled (not just the first), so a second Ctrl-C cannot cut the cleanup short
  // and leave redis-server behind; each cleanup step is bounded in time instead.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: ${exiting ? 'already stopping' : 'stopping the demo'}\n`);
      void finish(EXIT[signal]);
    });
  }
  try {
    await runDemo(cleanup);
  } catch (error) {
    await finish(EXIT.failure, error);
    return;
  }
  await finish(EXIT.ok);
}

void main();
