import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { RedisClient } from '../../lib/redis/client';
import { RedisKeys } from '../../lib/redis/keys';
import { startWorkerService, type WorkerServiceHandle } from '../../lib/worker/worker-service';
import { LOCAL_FEEDER_DEFAULTS, LocalFeeder, LocalFeederRefused } from '../../demo/local-feeder';
import { HeatGateStub } from '../support/heat-gate-stub';
import { freePort } from '../support/local-redis-server';
import { connectedClient, eventually, useRedisServer } from '../support/redis';
import { metricValue, workerConfig } from '../support/seed';

const ROOT = join(__dirname, '..', '..');

/** Runs a demo script from source; resolves with its exit code and output once it exits. */
function runScript(script: string, args: string[], env: Record<string, string>, onStdout?: (text: string, kill: () => void) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'demo', script), ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    onStdout?.(out, () => child.kill('SIGTERM'));
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
}

describe('the local feeder (npm run local) and the heat stand-in (npm run heat-stand-in)', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());

  it('writes positions, market state and portfolio as the live publishers do, each key with its TTL', async () => {
    const nowMs = 1_796_600_000_000;
    await new LocalFeeder({ redis: client, intervalSec: 5, now: () => nowMs }).writeOnce();
    expect(await client.hgetall('quantum:state:positions:BTCUSDT')).to.deep.equal({
      symbol: 'BTCUSDT',
      position_amt: '0.5',
      side: 'LONG',
      quantity: '0.5',
      entry_price: '100000',
      mark_price: '100000',
      ts_epoch: '1796600000',
      source: LOCAL_FEEDER_DEFAULTS.source,
    });
    expect(await client.ttl('quantum:state:positions:BTCUSDT')).to.be.within(290, 300);
    const market = await client.hgetall('quantum:marketstate:SOLUSDT');
    expect(market).to.include({ sigma: '0.00400000', ts_timestamp: '1796600000' });
    expect(Object.keys(market)).to.include.members(['mu', 'p_trend', 'p_mr', 'p_chop']);
    expect(await client.ttl('quantum:marketstate:SOLUSDT')).to.be.within(45, 50);
    expect(await client.hgetall('quantum:state:portfolio')).to.include({
      timestamp: '1796600000',
      equity_usd: '100000.00',
      positions_count: '2',
      positions_notional_usd: '50600.00',
    });
    expect(await client.ttl('quantum:state:portfolio')).to.be.within(110, 120);
  });

  it('writes where the worker reads: its key prefix and configured input families', async () => {
    await new LocalFeeder({ redis: client, keys: new RedisKeys('p28x', { positions: 'pos:live', marketState: 'ms', portfolio: 'pf' }) }).writeOnce();
    expect((await client.keys('*')).sort()).to.deep.equal(['p28x:ms:BTCUSDT', 'p28x:ms:ETHUSDT', 'p28x:ms:SOLUSDT', 'p28x:pf', 'p28x:pos:live:BTCUSDT', 'p28x:pos:live:ETHUSDT']);
  });

  it('refuses to overwrite a portfolio state another publisher keeps fresh, not a stale or its own one', async () => {
    const nowMs = Date.now();
    const feeder = new LocalFeeder({ redis: client, now: () => nowMs });
    await client.hset('quantum:state:portfolio', { equity_usd: '5', timestamp: String(Math.floor(nowMs / 1000) - 10), source: 'portfolio-state-publisher' });
    let refused: unknown;
    await feeder.checkNoOtherWriter().catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(LocalFeederRefused);
    await client.hset('quantum:state:portfolio', { timestamp: String(Math.floor(nowMs / 1000) - 3600) });
    await feeder.checkNoOtherWriter();
    await feeder.writeOnce();
    await feeder.checkNoOtherWriter();
  });

  describe('beside a worker', () => {
    let heat: HeatGateStub;
    let service: WorkerServiceHandle | undefined;
    before(async () => {
      heat = await HeatGateStub.start();
    });
    after(async () => {
      await service?.stop();
      await heat.close();
    });

    it('keeps budgets written and /health healthy for longer than STALE_SEC + MAX_LKG_AGE_SEC, which a one-off seed does not', async () => {
      // The defaults (30 s + 900 s) scaled down: without fresh writes the worker stops at 4 s.
      service = await startWorkerService(
        workerConfig(redis.server, { PORT: '0', HEAT_GATE_METRICS_URL: heat.url, STALE_SEC: '2', MAX_LKG_AGE_SEC: '2', BUDGET_COMPUTE_INTERVAL_SEC: '0.2', BUDGET_HASH_TTL_SEC: '2', HEALTH_MAX_BUDGET_AGE_SEC: '1' }),
        { processMetrics: false },
      );
      const feeder = new LocalFeeder({ redis: client, intervalSec: 0.3 });
      feeder.start((error) => {
        throw error;
      });
      const health = async () => (await fetch(`http://127.0.0.1:${service!.port}/health`)).status;
      try {
        await eventually(async () => (await client.exists('quantum:portfolio:budget:BTCUSDT')) === 1, 10000);
        const until = Date.now() + 6000;
        while (Date.now() < until) {
          await new Promise((r) => setTimeout(r, 500));
          expect(await health(), 'health while the feeder runs').to.equal(200);
        }
        expect(await metricValue(service.metrics.registry, 'p28_portfolio_too_old_total')).to.equal(0);
        // The worker read the live families as the feeder wrote them: known positions, and the tracked SOLUSDT flat.
        expect(await client.hgetall('quantum:portfolio:budget:BTCUSDT')).to.include({ position_status: 'ok', position_notional_usd: '50000' });
        expect(await client.hgetall('quantum:portfolio:budget:ETHUSDT')).to.include({ position_status: 'ok', position_notional_usd: '600' });
        expect(await client.hget('quantum:portfolio:budget:SOLUSDT', 'position_amt')).to.equal('0');
      } finally {
        feeder.stop();
      }
      // Without the feeder the same worker runs out of portfolio state: the feeder is what kept it up.
      await eventually(async () => (await metricValue(service!.metrics.registry, 'p28_portfolio_too_old_total')) > 0, 15000, 100);
      await eventually(async () => (await health()) === 503, 15000, 100);
    });
  });

  it('the README quick start as processes: the feeder and the worker give a healthy worker with three budgets', async () => {
    const [heatPort, workerPort] = [await freePort(), await freePort()];
    const env = { REDIS_URL: redis.server.url, HEAT_GATE_METRICS_URL: `http://127.0.0.1:${heatPort}/metrics`, PORT: String(workerPort), BUDGET_COMPUTE_INTERVAL_SEC: '0.5' };
    const feeder = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'demo', 'local-feeder.ts'), '--interval', '1', '--heat-port', String(heatPort)], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    const worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli.ts')], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    const exited = (child: typeof worker) => new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const [feederExit, workerExit] = [exited(feeder), exited(worker)];
    try {
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${workerPort}/health`).catch(() => undefined);
        return res?.status === 200 && (await client.keys('quantum:portfolio:budget:*')).length === 3;
      }, 30000, 250);
      expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'portfolio_heat')).to.equal('0.65');
    } finally {
      feeder.kill('SIGTERM');
      worker.kill('SIGTERM');
    }
    expect(await feederExit).to.equal(0);
    expect(await workerExit).to.equal(0);
  });

  it('npm run local refuses a Redis on another machine, with exit code 2', async () => {
    const res = await runScript('local-feeder.ts', [], { REDIS_URL: 'redis://:secret@10.255.255.1:6379' });
    expect(res.code).to.equal(2);
    expect(res.err).to.contain('refusing to write test data to redis://:***@10.255.255.1:6379');
    expect(res.err).not.to.contain('secret');
  });

  it('the heat stand-in runs alone, serves the heat it is given, and stops on SIGTERM with 0', async () => {
    const port = await freePort();
    let body = '';
    const res = await runScript('heat-stand-in.ts', ['--heat', '0.3', '--port', String(port)], {}, (out, kill) => {
      if (!out.includes('Ctrl-C') || body !== '') return;
      body = 'fetching';
      void fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .then((text) => {
          body = text;
          kill();
        });
    });
    expect(res.code).to.equal(0);
    expect(res.out).to.contain(`p26_heat_value 0.3 at http://127.0.0.1:${port}/metrics`);
    expect(body).to.contain('p26_heat_value 0.3');
  });

  it('the heat stand-in names a taken port and exits 3; a bad heat is a usage error (2)', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const taken = await runScript('heat-stand-in.ts', ['--port', String(port)], {});
      expect(taken.code).to.equal(3);
      expect(taken.err).to.contain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    } finally {
      blocker.close();
    }
    const bad = await runScript('heat-stand-in.ts', ['--heat', '1.5'], {});
    expect(bad.code).to.equal(2);
    expect(bad.err).to.contain('expected a number in [0,1]');
  });
});
