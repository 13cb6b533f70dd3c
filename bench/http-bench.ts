import 'reflect-metadata';
import { Agent, request } from 'node:http';
import { Registry } from 'prom-client';
import { RedisKeys } from '../lib/redis/keys';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';
import { startHttpServer } from '../lib/worker/http-server';
import { BudgetGate } from '../plugin/budget-gate';
import { encodeBudgetHash } from '../types/budget-hash';
import type { GateDecision, PermitRequest } from '../types/permit';
import { budgetFixture } from '../dev/budget-fixture';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { latencyRows, type Row } from './report';
import { interleaved, percentile, throughput } from './stats';

const SYMBOL = 'BTCUSDT';
const PLAN: PermitRequest = { planId: 'bench-http', symbol: SYMBOL, action: 'OPEN', side: 'BUY', qty: 0.1 };
const BODY = JSON.stringify(PLAN);

export interface HttpBenchOptions {
  serialSamples: number;
  throughputOps: number;
  concurrency: number;
}

/** One POST /v1/decisions over `agent` (keep-alive, or a new connection each time without one). */
function postDecision(port: number, agent: Agent | false): Promise<GateDecision> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/decisions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(data) as GateDecision);
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(BODY);
  });
}

function expectBlock(decision: GateDecision, where: string): void {
  if (decision.reason !== 'p28_budget_violation') throw new Error(`${where}: expected p28_budget_violation, got ${decision.reason}`);
}

/**
 * The cost of the HTTP hop: `POST /v1/decisions` on the worker's fastify server against
 * `BudgetGate.evaluate` called in-process, both deciding the same over-budget plan through the same
 * gate on the same redis-server, interleaved in the same run. Client and server share this process,
 * so the HTTP figures include both ends of the hop.
 */
export async function runHttpBench(server: LocalRedisServer, o: HttpBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const keys = new RedisKeys();
  const seed = createRedisClient({ url: server.url, profile: 'worker' });
  await waitForReady(seed, 5000);
  const nowSec = Math.floor(Date.now() / 1000);
  const fields = encodeBudgetHash(budgetFixture({ symbol: SYMBOL, mode: 'enforce', timestamp: nowSec, last_violation_ts: nowSec }));
  await seed.multi().hset(keys.budget(SYMBOL), fields).expire(keys.budget(SYMBOL), 3600).exec();

  const gateClient: RedisClient = createRedisClient({ url: server.url, profile: 'gate', commandTimeoutMs: 1000 });
  gateClient.on('error', () => undefined);
  await waitForReady(gateClient, 5000);
  // A roomy timeout: the figures are latencies, not fail-opens of a loaded machine.
  const gate = new BudgetGate({ redis: gateClient, timeoutMs: 1000 });
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    redis: seed,
    worker: {
      mode: 'enforce',
      healthFacts: {
        mode: 'enforce',
        modeSource: 'env',
        role: 'leader',
        budgetsWrittenAtMs: undefined,
        startedAtMs: Date.now(),
        lastSuccessAtMs: undefined,
        lastCycleResult: undefined,
        failedInARow: 0,
        lastError: undefined,
      },
    },
    gate,
    instanceId: 'bench',
    maxBudgetAgeSec: 15,
  });
  const keepAlive = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const rows: Row[] = [];
  try {
    expectBlock(await gate.evaluate(PLAN), 'in-process warm-up');
    expectBlock(await postDecision(http.port, keepAlive), 'HTTP warm-up');
    const inProcess = () => gate.evaluate(PLAN);
    const overHttp = () => postDecision(http.port, keepAlive);

    log('http: serial latency, keep-alive');
    await interleaved(inProcess, overHttp, { samples: 300, block: 100 });
    const serial = await interleaved(inProcess, overHttp, { samples: o.serialSamples, block: 250 });
    rows.push(...latencyRows('POST /v1/decisions (keep-alive) vs in-process evaluate()', 'µs', serial));
    rows.push({
      scenario: 'POST /v1/decisions (keep-alive) vs in-process evaluate()',
      metric: 'HTTP hop p50',
      unit: 'µs',
      value: percentile(serial.b, 0.5) - percentile(serial.a, 0.5),
    });

    log('http: serial latency, a new connection per request');
    const fresh = await interleaved(inProcess, () => postDecision(http.port, false), { samples: Math.max(200, Math.floor(o.serialSamples / 5)), block: 100 });
    rows.push({
      scenario: 'POST /v1/decisions (new connection each) vs in-process evaluate()',
      metric: 'latency p50',
      unit: 'µs',
      value: percentile(fresh.b, 0.5),
      baseline: percentile(fresh.a, 0.5),
      ratio: percentile(fresh.b, 0.5) / percentile(fresh.a, 0.5),
    });

    log(`http: throughput, ${o.concurrency} concurrent callers`);
    const direct = await throughput(inProcess, o.concurrency, o.throughputOps);
    const hop = await throughput(overHttp, o.concurrency, o.throughputOps);
    rows.push({
      scenario: `POST /v1/decisions, ${o.concurrency} concurrent keep-alive callers vs in-process`,
      metric: 'throughput',
      unit: 'decisions/s',
      value: hop,
      baseline: direct,
      ratio: hop / direct,
    });
    expectBlock(await postDecision(http.port, keepAlive), 'HTTP after the run');
  } finally {
    keepAlive.destroy();
    await http.close();
    await gate.close();
    gateClient.disconnect();
    seed.disconnect();
  }
  return rows;
}
