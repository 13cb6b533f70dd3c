import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { resolve } from 'node:path';
import { LocalRedisServer } from '../support/local-redis-server';
import type { RedisClient } from '../../lib/redis/client';
import { connectedClient } from '../support/redis';

const ROOT = resolve(__dirname, '..', '..');

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the demo as `npm run demo` would, from the TypeScript sources. REDIS_URL is taken out of the
 * inherited environment (the demo would use that server) unless `env` sets it.
 * `whenOutput` is called with the stdout so far, each time more arrives.
 */
function runDemo(env: Record<string, string> = {}, whenOutput?: (stdout: string, pid: number) => void): Promise<DemoRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.REDIS_URL === undefined) delete childEnv.REDIS_URL;
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/run-demo.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    whenOutput?.(stdout, child.pid!);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

/** The paragraph (lines up to the next blank line) whose first line starts with `title`. */
function section(output: string, title: string): string[] {
  const paragraph = output.split('\n\n').find((p) => p.startsWith(title));
  if (!paragraph) throw new Error(`no section "${title}" in:\n${output}`);
  return paragraph.split('\n');
}

/** The rows of the first table in `lines`, as header -> cell maps (cells are 2+ spaces apart). */
function tableRows(lines: string[], firstHeader: string): Record<string, string>[] {
  const start = lines.findIndex((line) => line.trim().startsWith(`${firstHeader} `));
  if (start < 0) throw new Error(`no table with a "${firstHeader}" column in:\n${lines.join('\n')}`);
  const cells = (line: string) => line.trim().split(/\s{2,}/);
  const headers = cells(lines[start]!);
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  ')) break;
    rows.push(Object.fromEntries(cells(line).map((cell, i) => [headers[i] ?? `#${i}`, cell])));
  }
  return rows;
}

/** symbol | plan | decision | reason | budget | notional | after plan of a permit table. */
function permitRows(output: string, title: string): string[][] {
  return tableRows(section(output, title), 'symbol').map((r) => [r.symbol!, r.plan!, r.decision!, r.reason!, r.budget!, r.notional!, r['after plan']!]);
}

function budgetRows(output: string, title: string): string[][] {
  return tableRows(section(output, title), 'symbol').map((r) => [r.symbol!, r.heat!, r.stress!, r.budget!, r.notional!, r['over budget']!, r.mode!]);
}

/** The port and pid of the private redis-server, from the setup lines. */
function redisServerOf(output: string): { port: number; pid: number } {
  const match = /private redis-server on 127\.0\.0\.1:(\d+) \(pid (\d+)\)/.exec(output);
  if (!match) throw new Error(`no redis-server line in:\n${output}`);
  return { port: Number(match[1]), pid: Number(match[2]) };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = new Socket();
    const finish = (open: boolean) => {
      socket.destroy();
      done(open);
    };
    socket.setTimeout(500, () => finish(true));
    socket.once('error', () => finish(false));
    socket.connect(port, '127.0.0.1', () => finish(true));
  });
}

async function expectRedisServerGone(output: string): Promise<void> {
  const { port, pid } = redisServerOf(output);
  expect(processExists(pid), `redis-server pid ${pid} still running`).to.equal(false);
  expect(await portAnswers(port), `port ${port} still answers`).to.equal(false);
}

describe('demo (npm run demo)', function () {
  this.timeout(60000);

  describe('a full run', () => {
    let run: DemoRun;
    before(async () => {
      run = await runDemo();
    });

    it('exits 0 and leaves no redis-server it started running (by pid and by port)', async () => {
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/^Cleaned up: closed the permit gate, stopped the worker, stopped the P2\.6 heat stub, .*stopped redis-server \(pid \d+\)\.$/m);
      await expectRedisServerGone(run.stdout);
    });

    it("prints the guide's Test 1 budget (1348, over by 48652) and, at heat 0.15, its Test 2 budget (1748)", () => {
      expect(budgetRows(run.stdout, 'Budgets at heat 0.65')).to.deep.equal([
        ['BTCUSDT', '0.65', '0.326', '1348', '50000', '48652', 'shadow'],
        ['ETHUSDT', '0.65', '0.326', '1348', '600', '0', 'shadow'],
        ['SOLUSDT', '0.65', '0.326', '1348', '0', '0', 'shadow'],
      ]);
      expect(budgetRows(run.stdout, 'Heat falls to 0.15')).to.deep.equal([
        ['BTCUSDT', '0.15', '0.126', '1748', '50000', '48252', 'enforce'],
        ['ETHUSDT', '0.15', '0.126', '1748', '600', '0', 'enforce'],
        ['SOLUSDT', '0.15', '0.126', '1748', '0', '0', 'enforce'],
      ]);
    });

    it('allows every plan in shadow mode, with the exact reason per plan', () => {
      expect(permitRows(run.stdout, 'Permits in shadow mode')).to.deep.equal([
        ['BTCUSDT', 'ADD BUY 0.01', 'allow', 'shadow_would_block', '1348', '50000', '51000'],
        ['ETHUSDT', 'ADD BUY 0.1', 'allow', 'within_budget', '1348', '600', '900'],
        ['ETHUSDT', 'ADD BUY 0.3', 'allow', 'shadow_would_block', '1348', '600', '1500'],
        ['BTCUSDT', 'PARTIAL_50', 'allow', 'reduce_only', '-', '-', '-'],
        ['BTCUSDT', 'FULL_CLOSE_PROPOSED', 'allow', 'reduce_only', '-', '-', '-'],
        ['SOLUSDT', 'OPEN BUY 2000 USD', 'allow', 'shadow_would_block', '1348', '0', '2000'],
        ['DOGEUSDT', 'OPEN BUY 5', 'allow (fail-open)', 'no_budget_data', '-', '-', '-'],
      ]);
    });

    it('judges readiness on the shadow phase it ran (not ready: seconds of history, a fail-open) and replays it under BASE_RISK_PCT=0.03', () => {
      const readiness = section(run.stdout, 'Readiness of the shadow phase');
      expect(readiness[0]).to.equal('Readiness of the shadow phase: `p28-worker readiness --window 1m` (exit 4, not ready)');
      const items = Object.fromEntries(tableRows(readiness, 'ITEM').map((r) => [r.ITEM, `${r.RESULT}  ${r.FIGURES}`]));
      expect(items['Shadow mode stable']).to.match(/^FAIL {2}\d+ cycles? over [\d.]+ s, 0 failed/);
      expect(items['Budget computations accurate']).to.equal('pass  3 hashes recomputed from their inputs, 0 differ');
      expect(items['No false positives']).to.equal('pass  3 would-blocks, 0 not explained by fresh data (0 %); 0 symbols standing out, 0 flapping');
      expect(items['Governor integration tested']).to.equal('FAIL  7 decisions from 1 gate, 4 judged on a hash, 1 failed open (14.29 %)');
      expect(items['Stale inputs under 5 % of computations']).to.match(/^pass {2}0 fallbacks in \d+ budget computations/);
      expect(items['Rollback plan ready']).to.equal('pass  mode shadow from env, override none, P28_MODE=shadow');
      expect(readiness.join('\n')).to.include('fail-open by reason: no_budget_data 1');

      const replay = section(run.stdout, "What if: the shadow phase's decisions judged again");
      expect(replay[1]).to.match(/^ {2}replay over 1 min: 7 logged decisions, 4 judged again under BASE_RISK_PCT=0\.03 \(configured 0\.02\), in [\d.]+ s$/);
      const counts = Object.fromEntries(replay.map((l) => /^ {2}(newly blocked|newly allowed|unchanged)\s+(\d+)\s*(.*)$/.exec(l)).flatMap((m) => (m ? [[m[1]!, `${m[2]} ${m[3]}`.trim()]] : [])));
      expect(counts).to.deep.equal({ 'newly blocked': '0 0.00', 'newly allowed': '2 2,900.00', unchanged: '2' });
      expect(tableRows(replay, 'SYMBOL').filter((r) => r.NEWLY_ALLOWED !== undefined).map((r) => [r.SYMBOL, r.NEWLY_ALLOWED])).to.deep.equal([['ETHUSDT', '1'], ['SOLUSDT', '1']]);
      expect(replay.join('\n')).to.include('fidelity: judged again under the configured parameters, every decision comes out as logged');
    });

    it('switches to enforce at run time through the override key and then blocks the plans over budget', () => {
      expect(run.stdout).to.match(/^Switch to enforce at run time: SET quantum:p28:mode enforce/m);
      expect(run.stdout).to.match(/^ {2}every budget hash said mode=enforce \d+ ms later; the worker was not restarted$/m);
      expect(permitRows(run.stdout, 'Permits in enforce mode')).to.deep.equal([
        ['BTCUSDT', 'ADD BUY 0.01', 'BLOCK', 'p28_budget_violation', '1348', '50000', '51000'],
        ['ETHUSDT', 'ADD BUY 0.1', 'allow', 'within_budget', '1348', '600', '900'],
        ['ETHUSDT', 'ADD BUY 0.3', 'BLOCK', 'p28_budget_violation', '1348', '600', '1500'],
        ['BTCUSDT', 'PARTIAL_50', 'allow', 'reduce_only', '-', '-', '-'],
        ['BTCUSDT', 'FULL_CLOSE_PROPOSED', 'allow', 'reduce_only', '-', '-', '-'],
        ['SOLUSDT', 'OPEN BUY 2000 USD', 'BLOCK', 'p28_budget_violation', '1348', '0', '2000'],
        ['DOGEUSDT', 'OPEN BUY 5', 'allow (fail-open)', 'no_budget_data', '-', '-', '-'],
      ]);
    });

    it('allows under the Test 2 budget (1748) the ETHUSDT add blocked under 1348', () => {
      const lines = section(run.stdout, 'Heat falls to 0.15');
      const rows = tableRows(lines.slice(lines.findIndex((l) => l.startsWith('The ETHUSDT'))), 'symbol');
      expect(rows.map((r) => [r.symbol, r.plan, r.decision, r.reason, r.budget])).to.deep.equal([['ETHUSDT', 'ADD BUY 0.3', 'allow', 'within_budget', '1748']]);
    });

    it('shows the gate failing open within its timeout while Redis is frozen (timeout, then breaker_open) and judging again after', () => {
      const lines = section(run.stdout, 'Redis frozen (SIGSTOP');
      const rows = tableRows(lines, 'plans');
      expect(rows.map((r) => [r.decision, r.reason])).to.deep.equal([
        ['allow (fail-open)', 'timeout'],
        ['allow (fail-open)', 'breaker_open'],
      ]);
      // The contract's bound: never longer than timeoutMs (50) plus a small margin.
      const slowestMs = Math.max(...rows.map((r) => Number(/([\d.]+) ms$/.exec(r.latency!)?.[1])));
      expect(slowestMs).to.be.at.most(250);
      expect(lines.join('\n')).to.match(/^Redis resumed \(SIGCONT\): [\d.]+ s later .* judges again: p28_budget_violation$/m);
    });
  });

  it('cleans up everything it started and exits 130 on SIGINT', async () => {
    let interrupted = false;
    const run = await runDemo({}, (stdout, pid) => {
      if (interrupted || !stdout.includes('Permits in shadow mode')) return;
      interrupted = true;
      process.kill(pid, 'SIGINT');
    });
    expect(interrupted).to.equal(true);
    expect(run.code, run.stderr).to.equal(130);
    expect(run.stderr).to.include('SIGINT: stopping the demo');
    expect(run.stdout).to.match(/^Cleaned up: .*stopped redis-server \(pid \d+\)\.$/m);
    expect(run.stdout).not.to.include('Permits in enforce mode');
    await expectRedisServerGone(run.stdout);
  });

  it('exits non-zero and says how to install redis-server or use REDIS_URL when redis-server cannot be run', async () => {
    const run = await runDemo({ REDIS_SERVER_BIN: '/nonexistent/redis-server' });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('apt-get install redis-server');
    expect(run.stderr).to.include('REDIS_URL=redis://');
    expect(run.stdout).not.to.include('Cleaned up');
  });

  describe('with REDIS_URL', () => {
    let server: LocalRedisServer;
    let client: RedisClient;
    before(async () => {
      server = await LocalRedisServer.start();
      client = await connectedClient(server);
    });
    after(async () => {
      client.disconnect();
      await server.stop();
    });

    it("runs under a key prefix of its own, skips freezing the server it does not own, and deletes only its own keys", async () => {
      await client.hset('quantum:state:portfolio', { equity_usd: '5', drawdown: '0', timestamp: '1' });
      await client.set('quantum:p28:mode', 'shadow');
      const run = await runDemo({ REDIS_URL: server.url });
      expect(run.code, run.stderr).to.equal(0);
      const prefix = /keys (p28demo[0-9a-f]{8}):\* only/.exec(run.stdout)?.[1];
      expect(prefix, run.stdout).to.be.a('string');
      expect(permitRows(run.stdout, 'Permits in enforce mode')[0]).to.deep.equal(['BTCUSDT', 'ADD BUY 0.01', 'BLOCK', 'p28_budget_violation', '1348', '50000', '51000']);
      expect(run.stdout).to.include('Redis pause skipped');
      expect(run.stdout).not.to.include('Redis frozen');
      expect(run.stdout).to.include(`deleted the demo keys (${prefix}:*)`);
      expect((await client.keys('*')).sort()).to.deep.equal(['quantum:p28:mode', 'quantum:state:portfolio']);
      expect(await client.hget('quantum:state:portfolio', 'equity_usd')).to.equal('5');
      expect(await client.get('quantum:p28:mode')).to.equal('shadow');
      expect(processExists(server.pid!)).to.equal(true);
    });
  });
});
