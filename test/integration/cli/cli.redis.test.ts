import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { RedisClient } from '../../../lib/redis/client';
import type { HeatGateStub } from '../../support/heat-gate-stub';
import { useWorkerInputs } from '../../support/worker-inputs';
import { eventually } from '../../support/redis';
import { seedGuideScenario } from '../../support/seed';
import { freePort } from '../../support/local-redis-server';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';

const ROOT = join(__dirname, '..', '..', '..');
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
  let client: RedisClient;
  let stub: HeatGateStub;
  const redis = useWorkerInputs((c, s) => {
    client = c;
    stub = s;
  });
  const children: ChildProcess[] = [];
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

  it('a port in use exits 3 with one line naming PORT, and no stack trace', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const worker = runCli([], workerEnv('proc-port', { PORT: String(port) }));
      children.push(worker.child);
      const { code } = await worker.exit;
      expect(code).to.equal(3);
      expect(worker.stderr().trim().split('\n')).to.deep.equal([`cannot listen on 127.0.0.1:${port}: the port is in use (another p28-worker?); set PORT to a free port (PORT=0 picks one)`]);
      expect(worker.stderr() + worker.stdout()).not.to.match(/\bat .*\.(ts|js):\d+/);
    } finally {
      blocker.close();
    }
  });

  it('logs the deployment guide\'s start lines, and mode reports what the worker runs, not the shell\'s P28_MODE', async () => {
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const worker = start('proc-enforce', { P28_MODE: 'enforce' });
    await eventually(async () => (await client.hget('quantum:p28:worker:heartbeat', 'mode')) === 'enforce', 20000, 50);
    expect(worker.stdout()).to.contain('"msg":"Starting budget compute loop"');
    expect(await client.hgetall('quantum:p28:worker:heartbeat')).to.include({ leader: 'proc-enforce', mode: 'enforce', mode_source: 'env', configured_mode: 'enforce' });
    const shell = runCli(['mode'], { REDIS_URL: redis.server.url, P28_MODE: 'shadow' });
    children.push(shell.child);
    expect((await shell.exit).code).to.equal(0);
    expect(shell.stdout()).to.contain("mode: enforce (source: env, the workers' P28_MODE; read from the heartbeat of proc-enforce)");
    expect(shell.stdout()).to.contain("note: P28_MODE=shadow here differs from the workers' P28_MODE=enforce");
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).to.equal(0);
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
      expect((await mode()).out).to.contain('mode: unknown (source: none; no worker has published a mode');
      const set = await mode('enforce');
      expect(set.code).to.equal(0);
      expect(set.out).to.contain('lasts until it is cleared (p28-worker mode --clear) or until a worker process starts');
      expect(await client.get('quantum:p28:mode')).to.equal('enforce');

      const shown = await mode();
      expect(shown.code).to.equal(0);
      expect(shown.out).to.contain('mode: enforce (source: override, quantum:p28:mode)');
      expect(shown.out).to.contain('override: enforce');

      const cleared = await mode('--clear');
      expect(cleared.code).to.equal(0);
      expect(await client.exists('quantum:p28:mode')).to.equal(0);
      const after = (await mode()).out;
      expect(after).to.contain('override: none');
      expect(after).to.contain('mode: unknown (source: none');
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
      expect(bad.code).to.equal(2);
      expect(bad.err).to.contain("Allowed choices are shadow, enforce");
      expect(await client.exists('quantum:p28:mode')).to.equal(0);
    });
  });

  describe('operator subcommands', () => {
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const cli = runCli(args, { REDIS_URL: redis.server.url, P28_MODE: 'shadow', ...env });
      children.push(cli.child);
      const { code } = await cli.exit;
      return { code, out: cli.stdout(), err: cli.stderr() };
    };
    const nowSec = () => Math.floor(Date.now() / 1000);
    /** Budget hashes as the worker writes them: BTCUSDT 0.5 @ 100000 over a budget of 1348, ETHUSDT within. */
    const seedBudgets = async (mode: 'shadow' | 'enforce') => {
      const common = { stress_factor: '0.326', equity_usd: '100000', portfolio_heat: '0.65', cluster_stress: '0', vol_regime: '0.33', mode, timestamp: String(nowSec() - 2), base_risk_pct: '0.02' };
      await client.hset('quantum:portfolio:budget:BTCUSDT', { ...common, symbol: 'BTCUSDT', budget_usd: '1348', position_amt: '0.5', position_price: '100000', position_notional_usd: '50000', over_budget_usd: '48652' });
      await client.hset('quantum:portfolio:budget:ETHUSDT', { ...common, symbol: 'ETHUSDT', budget_usd: '1348', position_amt: '0.1', position_price: '3000', position_notional_usd: '300', over_budget_usd: '0' });
    };
    const keyspace = async () => JSON.stringify(Object.fromEntries(await Promise.all((await client.keys('*')).sort().map(async (k) => [k, await client.hgetall(k)]))));

    it('--version prints the package version', async () => {
      const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
      const res = await run(['--version']);
      expect(res.code).to.equal(0);
      expect(res.out.trim()).to.equal(version);
    });

    it('budgets prints a table of every budget hash, and --over only the over-budget ones, without writing', async () => {
      await seedBudgets('enforce');
      const before = await keyspace();
      const all = await run(['budgets']);
      expect(all.code).to.equal(0);
      const lines = all.out.trim().split('\n');
      expect(lines[0]!.split(/\s+/)).to.deep.equal(['SYMBOL', 'BUDGET_USD', 'NOTIONAL_USD', 'OVER_BUDGET_USD', 'POSITION', 'MODE', 'AGE']);
      expect(lines[1]!.split(/\s+/).slice(0, 6)).to.deep.equal(['BTCUSDT', '1348.00', '50000.00', '48652.00', 'ok', 'enforce']);
      expect(lines[1]!.split(/\s+/)[6]).to.match(/^[2-9]s$/);
      expect(lines[2]!.split(/\s+/).slice(0, 6)).to.deep.equal(['ETHUSDT', '1348.00', '300.00', '0.00', 'ok', 'enforce']);
      const over = await run(['budgets', '--over']);
      expect(over.out.trim().split('\n').map((l) => l.split(/\s+/)[0])).to.deep.equal(['SYMBOL', 'BTCUSDT']);
      expect(await keyspace()).to.equal(before);
    });

    it('budgets --limit 1 reads one hash per page and still prints every hash once, under one header', async () => {
      await seedBudgets('enforce');
      const paged = await run(['budgets', '--limit', '1']);
      expect(paged.code).to.equal(0);
      expect(paged.out.trim().split('\n').map((l) => l.split(/\s+/)[0])).to.deep.equal(['SYMBOL', 'BTCUSDT', 'ETHUSDT']);
      const bad = await run(['budgets', '--limit', '0']);
      expect(bad.code).to.not.equal(0);
      expect(bad.err).to.contain('expected a whole number in 1..5000');
    });

    it('budgets shows an unknown position as such: stale, and none for a hash without position fields', async () => {
      await seedBudgets('enforce');
      const common = { stress_factor: '0.326', equity_usd: '100000', portfolio_heat: '0.65', cluster_stress: '0', vol_regime: '0.33', mode: 'enforce', timestamp: String(nowSec() - 2), base_risk_pct: '0.02' };
      await client.hset('quantum:portfolio:budget:SOLUSDT', { ...common, symbol: 'SOLUSDT', budget_usd: '1348', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0', position_status: 'stale' });
      await client.hset('quantum:portfolio:budget:XRPUSDT', { ...common, symbol: 'XRPUSDT', budget_usd: '1348' });
      const lines = (await run(['budgets'])).out.trim().split('\n');
      expect(lines[3]!.split(/\s+/).slice(0, 6)).to.deep.equal(['SOLUSDT', '1348.00', '-', '-', 'stale', 'enforce']);
      expect(lines[4]!.split(/\s+/).slice(0, 6)).to.deep.equal(['XRPUSDT', '1348.00', '-', '-', 'none', 'enforce']);
    });

    it('check matches a lower-case symbol (btcusdt is BTCUSDT)', async () => {
      await seedBudgets('enforce');
      const add = await run(['check', 'btcusdt', '--side', 'BUY', '--qty', '0.01']);
      expect(add.out).to.contain('BTCUSDT BUY 0.01: BLOCK (p28_budget_violation: projected_over_budget)');
    });

    it('check blocks an add to an over-budget position under enforce and allows its reduction, saying why', async () => {
      await seedBudgets('enforce');
      const add = await run(['check', 'BTCUSDT', '--side', 'BUY', '--qty', '0.01']);
      expect(add.code).to.equal(0);
      expect(add.out).to.contain('BTCUSDT BUY 0.01: BLOCK (p28_budget_violation: projected_over_budget)');
      expect(add.out).to.contain('mode enforce, budget 1348.00 USD, position 50000.00 USD, after the plan 51000.00 USD');
      const trim = await run(['check', 'BTCUSDT', '--side', 'SELL', '--qty', '0.1']);
      expect(trim.out).to.contain('BTCUSDT SELL 0.1: ALLOW (reduce_only)');
    });

    it('check of a plan within budget says so and reserves nothing: it is no plan in flight', async () => {
      await seedBudgets('enforce');
      const add = await run(['check', 'ETHUSDT', '--side', 'BUY', '--qty', '0.01', '--notional', '30']);
      expect(add.out).to.contain('ETHUSDT BUY 0.01: ALLOW (within_budget)');
      expect(await client.hexists('quantum:portfolio:budget:ETHUSDT', 'reservations')).to.equal(0);
    });

    it('check reports shadow_would_block under shadow, and a fail-open for a symbol without a budget', async () => {
      await seedBudgets('shadow');
      const add = await run(['check', 'BTCUSDT', '--side', 'BUY', '--qty', '0.01']);
      expect(add.out).to.contain('ALLOW (shadow_would_block: projected_over_budget)');
      const none = await run(['check', 'XRPUSDT', '--side', 'BUY', '--qty', '10']);
      expect(none.out).to.contain('XRPUSDT BUY 10: ALLOW (fail-open) (no_budget_data)');
    });

    for (const args of [['check', 'btc-usdt', '--side', 'BUY', '--qty', '1'], ['check', 'BTCUSDT', '--side', 'LONG', '--qty', '1'], ['check', 'BTCUSDT', '--side', 'BUY', '--qty', '-1'], ['check', 'BTCUSDT', '--qty', '1']]) {
      it(`check ${args.slice(1).join(' ')} is refused with a usage error`, async () => {
        const res = await run(args);
        expect(res.code).to.equal(2);
        expect(res.err).to.match(/^error: /);
      });
    }

    it('mode without arguments reads the mode the budget hashes say, then a set override, never its own P28_MODE', async () => {
      await seedBudgets('shadow');
      const fromHashes = await run(['mode'], { P28_MODE: 'enforce' });
      expect(fromHashes.out).to.contain("mode: shadow (source: env, the workers' P28_MODE; read from the budget hashes)");
      expect(fromHashes.out).to.contain('note: P28_MODE=enforce here differs from the mode the workers publish (shadow)');
      await client.set('quantum:p28:mode', 'enforce');
      const shown = await run(['mode'], { P28_MODE: 'shadow' });
      expect(shown.out).to.contain('mode: enforce (source: override, quantum:p28:mode)');
      expect(await client.get('quantum:p28:mode')).to.equal('enforce');
    });

    it('a mistyped subcommand is named as unknown, with a suggestion, and exits 2 like every usage error', async () => {
      const typo = await run(['budget']);
      expect(typo.code).to.equal(2);
      expect(typo.err).to.contain("error: unknown command 'budget'");
      expect(typo.err).to.contain('budgets');
      expect(typo.err).not.to.contain('too many arguments');
      const option = await run(['budgets', '--bogus']);
      expect(option.code).to.equal(2);
      expect(option.err).to.contain("error: unknown option '--bogus'");
      const both = await run(['mode', 'enforce', '--clear']);
      expect(both.code).to.equal(2);
      expect((await run(['--help'])).code).to.equal(0);
    });

    it('--env reads the env file without a shell: a password with a quote and a dollar reaches Redis as written', async () => {
      const password = "pa'ss$HOME`x`";
      await client.config('SET', 'requirepass', password);
      try {
        const dir = mkdtempSync(join(tmpdir(), 'p28-cli-env-'));
        const file = join(dir, 'p28.env');
        writeFileSync(file, `REDIS_URL=redis://:${password}@127.0.0.1:${redis.server.port}/0\nP28_MODE=enforce\n`);
        await client.auth(password);
        await seedBudgets('enforce');
        const res = await run(['--env', file, 'budgets'], { REDIS_URL: 'redis://127.0.0.1:1' });
        expect(res.err).to.equal('');
        expect(res.code).to.equal(0);
        expect(res.out).to.contain('BTCUSDT');
        writeFileSync(file, `REDIS_URL=redis://:pa#ss@127.0.0.1:${redis.server.port}/0\n`);
        const ambiguous = await run(['--env', file, 'budgets']);
        expect(ambiguous.code).to.equal(2);
        expect(ambiguous.err).to.contain("line 1 (REDIS_URL): an unquoted value with '#'");
        const missing = await run(['--env', join(dir, 'nope.env'), 'budgets']);
        expect(missing.code).to.equal(2);
        expect(missing.err).to.contain('cannot read the env file (ENOENT)');
        rmSync(dir, { recursive: true, force: true });
      } finally {
        await client.config('SET', 'requirepass', '');
      }
    });

    it('names WRONGPASS and NOAUTH, without the password, when Redis refuses the credentials', async () => {
      await client.config('SET', 'requirepass', 'right-password');
      try {
        const wrong = await run(['budgets'], { REDIS_URL: `redis://:wrong-secret@127.0.0.1:${redis.server.port}` });
        expect(wrong.code).to.equal(1);
        expect(wrong.err).to.contain(`Redis at redis://:***@127.0.0.1:${redis.server.port} refused the credentials (WRONGPASS`);
        expect(wrong.err).to.contain('REDIS_URL');
        expect(wrong.err).not.to.contain('wrong-secret');
        const none = await run(['mode'], { REDIS_URL: `redis://127.0.0.1:${redis.server.port}` });
        expect(none.code).to.equal(1);
        expect(none.err).to.contain('requires a password (NOAUTH)');
      } finally {
        await client.auth('right-password');
        await client.config('SET', 'requirepass', '');
      }
    });

    for (const args of [['budgets'], ['budgets', '--over'], ['check', 'BTCUSDT', '--side', 'BUY', '--qty', '1'], ['mode'], ['mode', 'enforce']]) {
      it(`${args.join(' ')} exits non-zero with a clear message when Redis cannot be reached`, async () => {
        const port = await freePort();
        const res = await run(args, { REDIS_URL: `redis://:s3cretpw@127.0.0.1:${port}` });
        expect(res.code).to.equal(1);
        expect(res.err).to.contain(`cannot reach Redis at redis://:***@127.0.0.1:${port}`);
        expect(res.err).to.not.contain('s3cretpw');
      });
    }
  });
});
