import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, useRedisServer } from '../../support/redis';
import { runWorkerProcess, type WorkerProcess } from '../../support/worker-process';

const HASHES = 20000;

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) / 1024;
}

describe('GET /v1/budgets over 20,000 hashes (real process)', function () {
  this.timeout(120000);
  const redis = useRedisServer();
  let client: RedisClient;
  let worker: WorkerProcess;

  before(async () => {
    client = await connectedClient(redis.server, 'worker', 30000);
    const pipeline = (client as Redis).pipeline();
    for (let i = 0; i < HASHES; i++) {
      const symbol = `S${i}USDT`;
      // A large extra field in every hash: the listing must not read it.
      pipeline.hset(`quantum:portfolio:budget:${symbol}`, { symbol, budget_usd: '1348', stress_factor: '0.326', equity_usd: '100000', portfolio_heat: '0.65', cluster_stress: '0', vol_regime: '0.33', mode: 'shadow', timestamp: String(Math.floor(Date.now() / 1000)), base_risk_pct: '0.02', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0', padding: 'x'.repeat(2000) });
    }
    await pipeline.exec();
    worker = runWorkerProcess([], { REDIS_URL: redis.server.url, HEAT_GATE_METRICS_URL: 'http://127.0.0.1:9/metrics', PORT: '0', LOG_LEVEL: 'info', P28_INSTANCE_ID: 'lister' });
    await worker.port();
  });
  after(async () => {
    await worker.kill();
    client.disconnect();
  });

  it('answers pages of at most 500 hashes, refuses a flood beyond two listings at once with 429, and the RSS stays bounded', async () => {
    const port = await worker.port();
    const base = `http://127.0.0.1:${port}`;
    const first = await fetch(`${base}/v1/budgets`);
    const text = await first.text();
    const page = JSON.parse(text) as { count: number; next_cursor: string | null; budgets: Record<string, string>[] };
    expect(page.count).to.equal(500);
    expect(page.next_cursor).to.equal(page.budgets[499]!.symbol);
    expect(page.budgets[0]).to.not.have.property('padding');
    expect(text.length).to.be.below(400_000);

    const before = rssMb(worker.child.pid!);
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/v1/budgets`).then(async (r) => (await r.arrayBuffer(), r.status))));
      statuses.push(...answers);
    }
    expect(statuses.filter((s) => s === 200).length).to.be.at.least(10);
    expect(statuses.every((s) => s === 200 || s === 429)).to.equal(true);
    expect(statuses.filter((s) => s === 429).length).to.be.above(0);
    expect(rssMb(worker.child.pid!) - before).to.be.below(60);

    // Following next_cursor visits every hash once.
    let cursor: string | null = null;
    let seen = 0;
    do {
      const res = await fetch(`${base}/v1/budgets?limit=5000${cursor ? `&cursor=${cursor}` : ''}`);
      const body = (await res.json()) as { count: number; next_cursor: string | null };
      seen += body.count;
      cursor = body.next_cursor;
    } while (cursor !== null);
    expect(seen).to.equal(HASHES);
  });
});
