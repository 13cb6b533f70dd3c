import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RedisClient } from '../../lib/redis/client';
import { startWorkerService, type WorkerServiceHandle } from '../../lib/worker/worker-service';
import { connectedClient, eventually, useRedisServer } from '../support/redis';
import { seedGuideScenario, workerConfig } from '../support/seed';

const CLIENT = join(__dirname, '..', '..', 'examples', 'python', 'p28_budget_client.py');
const run = promisify(execFile);

interface Verdict {
  block: boolean;
  reason: string;
  fail_open: boolean;
  elapsed_sec: number;
  decision: Record<string, unknown> | null;
}

/** Runs the reference client with python3 in isolated mode without site-packages: standard library only. */
async function ask(url: string, args: string[], timeoutSec = 0.5): Promise<Verdict> {
  const { stdout } = await run('python3', ['-I', '-S', CLIENT, ...args, '--url', url, '--timeout', String(timeoutSec)], { timeout: 15000 });
  return JSON.parse(stdout) as Verdict;
}

describe('examples/python/p28_budget_client.py against a running worker', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;
  let service: WorkerServiceHandle | undefined;

  before(function () {
    if (spawnSync('python3', ['--version']).status !== 0) {
      // python3 is installed by .ci/run; only a developer machine without it skips these.
      if (process.env.CI) throw new Error('python3 is required in CI (apt-get install python3)');
      this.skip();
    }
  });
  beforeEach(async () => {
    client = await connectedClient(redis.server);
    await client.flushall();
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const config = workerConfig(redis.server, { P28_MODE: 'enforce', PORT: '0', BUDGET_COMPUTE_INTERVAL_SEC: '0.2' });
    service = await startWorkerService(config, { heatSource: { read: async () => ({ value: 0.65, source: 'live' }) }, processMetrics: false });
    await eventually(async () => (await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')) === '1348', 10000, 50);
  });
  afterEach(async () => {
    await service?.stop();
    client.disconnect();
  });

  const url = () => `http://127.0.0.1:${service!.port}`;

  it('blocks an add to the over-budget position: the verdict is truthy with p28_budget_violation', async () => {
    const verdict = await ask(url(), ['BTCUSDT', '--plan-id', 'plan-add', '--action', 'OPEN', '--side', 'BUY', '--qty', '0.01']);
    expect(verdict).to.include({ block: true, reason: 'p28_budget_violation', fail_open: false });
    expect(verdict.decision).to.include({ detail: 'projected_over_budget', budgetUsd: 1348 });
  });

  it('returns a verdict that is truthy exactly when the plan must be blocked, like the bool of the old check', async () => {
    const script = [
      'import sys',
      `sys.path.insert(0, ${JSON.stringify(join(CLIENT, '..'))})`,
      'from p28_budget_client import P28BudgetClient',
      `c = P28BudgetClient(${JSON.stringify(url())}, timeout_sec=2)`,
      "add = c.check_plan('p1', {'symbol': 'BTCUSDT', 'action': 'OPEN', 'side': 'BUY', 'qty': '0.01'})",
      "close = c.check_plan('p2', {'symbol': 'BTCUSDT', 'action': 'PARTIAL_50', 'side': 'SELL', 'qty': '0.25'})",
      'print(bool(add), add.reason, bool(close), close.reason)',
    ].join('\n');
    const { stdout } = await run('python3', ['-I', '-S', '-c', script], { timeout: 15000 });
    expect(stdout.trim()).to.equal('True p28_budget_violation False reduce_only');
  });

  it('allows a close of the same over-budget position with reduce_only', async () => {
    const close = await ask(url(), ['BTCUSDT', '--plan-id', 'plan-close', '--action', 'FULL_CLOSE_PROPOSED', '--side', 'SELL', '--qty', '0.5']);
    expect(close).to.include({ block: false, reason: 'reduce_only', fail_open: false });
    const trim = await ask(url(), ['BTCUSDT', '--plan-id', 'plan-trim', '--action', 'ADJUST', '--side', 'SELL', '--qty', '0.2']);
    expect(trim).to.include({ block: false, reason: 'reduce_only' });
  });

  it('fails open with client_unreachable, well within its timeout, once the worker is stopped', async () => {
    const address = url();
    await service!.stop();
    service = undefined;
    const verdict = await ask(address, ['BTCUSDT', '--side', 'BUY', '--qty', '0.01'], 0.5);
    expect(verdict).to.include({ block: false, reason: 'client_unreachable', fail_open: true });
    expect(verdict.elapsed_sec).to.be.below(0.5);
  });

  it('fails open with client_timeout within its timeout (plus a margin) when the worker accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const verdict = await ask(`http://127.0.0.1:${port}`, ['BTCUSDT', '--side', 'BUY', '--qty', '0.01'], 0.3);
      expect(verdict).to.include({ block: false, reason: 'client_timeout', fail_open: true });
      expect(verdict.elapsed_sec).to.be.within(0.25, 1.3);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
