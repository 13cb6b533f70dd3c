import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { RedisClient } from '../lib/redis/client';
import { HeatGateStub } from './support/heat-gate-stub';
import { connectedClient, eventually, useRedisServer } from './support/redis';
import { seedGuideScenario } from './support/seed';

const ROOT = join(__dirname, '..');
const LEASE = 'quantum:p28:worker:lease';
const BUDGET = 'quantum:portfolio:budget:BTCUSDT';

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `p28-worker` from source in a real process. */
function runCli(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

describe('p28-worker (real processes)', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;
  let stub: HeatGateStub;
  const children: ChildProcess[] = [];

  before(async () => {
    client = await connectedClient(redis.server);
    stub = await HeatGateStub.start();
  });
  after(async () => {
    client.disconnect();
    await stub.close();
  });
  beforeEach(async () => {
    await client.flushall();
    stub.serveHeat(0.65);
  });
  afterEach(() => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    }
  });

  const workerEnv = (instance: string, extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.server.url,
    HEAT_GATE_METRICS_URL: stub.url,
    PORT: '0',
    LOG_LEVEL: 'info',
    P28_INSTANCE_ID: instance,
    BUDGET_COMPUTE_INTERVAL_SEC: '0.2',
    LEASE_TTL_MS: '1000',
    ...extra,
  });
  const start = (instance: string, extra: Record<string, string> = {}) => {
    const running = runCli([], workerEnv(instance, extra));
    children.push(running.child);
    return running;
  };
  const leaseHolder = async () => (await client.get(LEASE))?.split('/')[0] ?? null;

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal} after releasing the lease`, async () => {
      await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
      const worker = start('proc-a');
      await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 20000, 50);
      expect(await leaseHolder()).to.equal('proc-a');
      worker.child.kill(signal);
      const { code } = await worker.exit;
      expect(code).to.equal(0);
      expect(await client.exists(LEASE)).to.equal(0);
      expect(worker.stdout()).to.contain('"msg":"lease released"');
      expect(worker.stdout()).to.contain('"msg":"stopped"');
    });
  }

  it('exits 2 and names every bad variable when the configuration is invalid', async () => {
    const worker = runCli([], { ALPHA_HEAT: 'abc', PORT: '-1' });
    children.push(worker.child);
    const { code } = await worker.exit;
    expect(code).to.equal(2);
    expect(worker.stderr()).to.contain('ALPHA_HEAT: expected a number in [0,1], got "abc"');
    expect(worker.stderr()).to.contain('PORT: expected a whole number in [0,65535], got "-1"');
  });

  it('hands the lease over when the leader stalls (SIGSTOP) or dies (SIGKILL); a stalled leader steps down', async () => {
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const a = start('proc-a');
    await eventually(async () => (await leaseHolder()) === 'proc-a', 20000, 50);
    const b = start('proc-b');
    await eventually(() => b.stdout().includes('"msg":"cycle"'), 20000, 50);
    expect(await leaseHolder()).to.equal('proc-a');
    expect(b.stdout()).to.not.contain('"role":"leader"');

    // Leader stalls: its lease expires and the stand-by takes over.
    a.child.kill('SIGSTOP');
    await eventually(async () => (await leaseHolder()) === 'proc-b', 10000, 50);
    await client.del(BUDGET);
    await eventually(async () => (await client.exists(BUDGET)) === 1, 10000, 50);

    // The stalled leader wakes up, finds the lease taken and stands by.
    a.child.kill('SIGCONT');
    await eventually(() => a.stdout().includes('"msg":"stand-by: '), 10000, 50);
    expect(await leaseHolder()).to.equal('proc-b');

    // The new leader dies without releasing: the old one takes over after the lease TTL.
    b.child.kill('SIGKILL');
    await eventually(async () => (await leaseHolder()) === 'proc-a', 10000, 50);
    await client.del(BUDGET);
    await eventually(async () => (await client.hget(BUDGET, 'budget_usd')) === '1348', 10000, 50);
    a.child.kill('SIGTERM');
    expect((await a.exit).code).to.equal(0);
  });

  describe('mode subcommand', () => {
    const mode = async (...args: string[]) => {
      const run = runCli(['mode', ...args], { REDIS_URL: redis.server.url, P28_MODE: 'shadow' });
      children.push(run.child);
      const { code } = await run.exit;
      return { code, out: run.stdout(), err: run.stderr() };
    };

    it('sets, shows and clears the run-time override key', async () => {
      expect((await mode()).out).to.contain('mode: shadow (source: env');
      const set = await mode('enforce');
      expect(set.code).to.equal(0);
      expect(set.out).to.contain('lasts until it is cleared (p28-worker mode --clear) or until a worker process starts');
      expect(await client.get('quantum:p28:mode')).to.equal('enforce');

      const shown = await mode();
      expect(shown.code).to.equal(0);
      expect(shown.out).to.contain('mode: enforce (source: override)');
      expect(shown.out).to.contain('override: enforce');

      const cleared = await mode('--clear');
      expect(cleared.code).to.equal(0);
      expect(await client.exists('quantum:p28:mode')).to.equal(0);
      const after = (await mode()).out;
      expect(after).to.contain('override: none');
      expect(after).to.contain('mode: shadow (source: env');
    });

    it('shows an override cleared by a starting worker', async () => {
      await client.xadd('quantum:stream:p28.mode', '*', 'event', 'cleared_at_start', 'from', 'enforce', 'to', 'shadow', 'source', 'env', 'instance', 'proc-b', 'timestamp', '1769553243');
      expect((await mode()).out).to.contain('last change: override enforce cleared at start by proc-b at 2026-01-27T22:34:03.000Z; mode -> shadow (env)');
    });

    it('shows the last switch recorded in the audit stream', async () => {
      await client.xadd('quantum:stream:p28.mode', '*', 'from', 'shadow', 'to', 'enforce', 'source', 'override', 'instance', 'proc-a', 'timestamp', '1769553243');
      expect((await mode()).out).to.contain('last switch: shadow -> enforce (override) by proc-a at 2026-01-27T22:34:03.000Z');
    });

    it('rejects a mode other than shadow or enforce without touching the key', async () => {
      const bad = await mode('block');
      expect(bad.code).to.not.equal(0);
      expect(bad.err).to.contain("Allowed choices are shadow, enforce");
      expect(await client.exists('quantum:p28:mode')).to.equal(0);
    });
  });
});
