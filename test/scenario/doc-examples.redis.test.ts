import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { RedisClient } from '../../lib/redis/client';
import { startWorkerService, type WorkerServiceHandle } from '../../lib/worker/worker-service';
import { documentationBlocks, localize, namesSharedRedis, type Addresses, type DocBlock } from '../support/doc-blocks';
import { HeatGateStub } from '../support/heat-gate-stub';
import { packagePython } from '../support/python';
import { connectedClient, eventually, useRedisServer } from '../support/redis';
import { seedGuideScenario, workerConfig } from '../support/seed';

/*
 * Doc-tests: every runnable code block of README.md and docs/ runs here, against a private
 * redis-server, a worker on a free port and a heat stand-in. TypeScript blocks compile against the
 * built package in a CommonJS and an ESM consumer project and run there, and must exit by
 * themselves; shell blocks run in bash with `set -eo pipefail`, with `redis-cli` and `p28-worker`
 * pointed at the private servers and `curl` failing on an HTTP error; Python blocks run with python3. A block is exempt only with a
 * reason (`<!-- doc-test: not-run: ... -->`, see test/support/doc-blocks.ts).
 */

const ROOT = join(__dirname, '..', '..');
const exec = promisify(execFile);
const API_TOKEN = 'doc-test-token-0123456789abcdef';

let blocks: DocBlock[] = [];
let extractionError: Error | undefined;
try {
  blocks = documentationBlocks(ROOT);
} catch (error) {
  extractionError = error as Error;
}

const slug = (b: DocBlock): string => `b_${b.file.replace(/[^A-Za-z0-9]+/g, '_')}_${b.line}`;

/** Builds dist/ when it is missing or older than a source file, so the blocks compile against the code of this tree. */
function ensureBuilt(): void {
  const built = join(ROOT, 'dist', 'index.js');
  const newest = (dir: string): number =>
    readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts'))
      .reduce((max, e) => Math.max(max, statSync(join(e.parentPath, e.name)).mtimeMs), 0);
  const sourceMs = Math.max(newest('lib'), newest('plugin'), newest('types'), statSync(join(ROOT, 'index.ts')).mtimeMs);
  if (existsSync(built) && existsSync(join(ROOT, 'dist', 'lib', 'cli.js')) && statSync(built).mtimeMs >= sourceMs) return;
  execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'ignore', timeout: 240000 });
}

/** A fresh consumer project that depends on the package, as `npm install` of it would leave it. */
function consumerProject(dir: string, type: 'commonjs' | 'module'): void {
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${type}`, version: '1.0.0', private: true, type }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'node16', moduleResolution: 'node16', strict: true, esModuleInterop: true, skipLibCheck: true, types: ['node'], outDir: 'out', rootDir: '.' },
      include: ['*.ts'],
    }),
  );
  symlinkSync(ROOT, join(dir, 'node_modules', 'portfolio-risk-governor'), 'dir');
  // The package's own dependencies, and what a consumer adds next to it (tsyringe, reflect-metadata, prom-client, @types/node).
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (entry.startsWith('.') || entry === '@types') continue;
    symlinkSync(join(ROOT, 'node_modules', entry), join(dir, 'node_modules', entry), 'dir');
  }
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
}

/** tsc's diagnostics per source file name. */
async function compile(dir: string): Promise<Map<string, string[]>> {
  const byFile = new Map<string, string[]>();
  try {
    await exec(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir, timeout: 180000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const out = (error as { stdout?: string }).stdout ?? String(error);
    for (const line of out.split('\n')) {
      const file = /^([\w.]+\.ts)\(/.exec(line)?.[1] ?? '(project)';
      if (line.trim() === '') continue;
      byFile.set(file, [...(byFile.get(file) ?? []), line]);
    }
  }
  return byFile;
}

interface Outcome {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Outcome> {
  try {
    const { stdout, stderr } = await exec(file, args, { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, signal: null, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; signal?: string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : null, signal: e.signal ?? null, stdout: e.stdout ?? '', stderr: e.stderr ?? String(error) };
  }
}

function expectSuccess(outcome: Outcome, block: DocBlock, how: string): void {
  const where = `${block.file}:${block.line} (${how})`;
  expect(outcome.signal, `${where} did not exit by itself within its time limit\n${outcome.stdout}\n${outcome.stderr}`).to.equal(null);
  expect(outcome.code, `${where} failed\n--- stdout\n${outcome.stdout}\n--- stderr\n${outcome.stderr}`).to.equal(0);
}

describe('documentation code blocks (doc-tests)', function () {
  this.timeout(60000);

  it('every fenced block names its language, and every exemption gives a reason', () => {
    expect(extractionError?.message).to.equal(undefined);
    expect(blocks.length).to.be.greaterThan(0);
  });

  it('no runnable block names the shared Redis port once its addresses are localized', () => {
    const to: Addresses = { redisUrl: 'redis://127.0.0.1:1/0', workerPort: 1, heatPort: 1, installDir: ROOT };
    const offending = blocks.filter((b) => !b.notRun && b.kind !== 'json' && b.kind !== 'output' && namesSharedRedis(localize(b.code, to)));
    expect(offending.map((b) => `${b.file}:${b.line}`)).to.deep.equal([]);
  });

  for (const block of blocks.filter((b) => b.kind === 'json' && !b.notRun)) {
    it(`${block.file}:${block.line} is valid JSON`, () => {
      expect(() => JSON.parse(block.code), `${block.file}:${block.line}`).not.to.throw();
    });
  }

  describe('run against a private Redis, worker and heat stand-in', function () {
    const redis = useRedisServer();
    let client: RedisClient;
    let heat: HeatGateStub;
    let service: WorkerServiceHandle;
    let work: string;
    let to: Addresses;
    let env: NodeJS.ProcessEnv;
    const diagnostics = { cjs: new Map<string, string[]>(), esm: new Map<string, string[]>() };
    const tsBlocks = blocks.filter((b) => b.kind === 'ts' && !b.notRun);

    before(async function () {
      this.timeout(420000);
      ensureBuilt();
      client = await connectedClient(redis.server);
      heat = await HeatGateStub.start();
      heat.serveHeat(0.65);
      service = await startWorkerService(
        workerConfig(redis.server, {
          PORT: '0',
          HEAT_GATE_METRICS_URL: heat.url,
          P28_API_TOKEN: API_TOKEN,
          BUDGET_COMPUTE_INTERVAL_SEC: '1',
          BUDGET_HASH_TTL_SEC: '10',
          // The blocks of one page run for longer than the default 30 s after it is seeded.
          STALE_SEC: '600',
        }),
        { processMetrics: false },
      );
      work = mkdtempSync(join(tmpdir(), 'p28-doc-tests-'));
      to = { redisUrl: redis.server.url, workerPort: service.port, heatPort: Number(new URL(heat.url).port), installDir: ROOT };

      // redis-cli and p28-worker as a reader of the docs has them, pointed at the private servers.
      const bin = join(work, 'bin');
      mkdirSync(bin);
      const redisCli = execFileSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, 'redis-cli'), `#!/bin/sh\nexec ${redisCli} -p ${redis.server.port} "$@"\n`);
      writeFileSync(join(bin, 'p28-worker'), `#!/bin/sh\nexec ${process.execPath} ${join(ROOT, 'dist', 'lib', 'cli.js')} "$@"\n`);
      // An HTTP error answer (401, 404, 503) fails the block, as a reader would see it fail.
      const curl = execFileSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, 'curl'), `#!/bin/sh\nexec ${curl} --fail-with-body "$@"\n`);
      for (const shim of ['redis-cli', 'p28-worker', 'curl']) chmodSync(join(bin, shim), 0o755);
      const pythonPath = ['clients/python/src', 'clients/python', 'examples/python'].map((p) => join(ROOT, p)).filter((p) => existsSync(p));
      env = {
        PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
        HOME: work,
        REDIS_URL: redis.server.url,
        P28_API_TOKEN: API_TOKEN,
        PYTHONPATH: pythonPath.join(delimiter),
        LOG_LEVEL: 'warn',
      };

      for (const [flavor, type] of [['cjs', 'commonjs'], ['esm', 'module']] as const) {
        const dir = join(work, flavor);
        mkdirSync(dir);
        consumerProject(dir, type);
        for (const block of tsBlocks) writeFileSync(join(dir, `${slug(block)}.ts`), localize(block.code, to));
      }
      if (tsBlocks.length > 0) [diagnostics.cjs, diagnostics.esm] = await Promise.all([compile(join(work, 'cjs')), compile(join(work, 'esm'))]);
    });

    after(async () => {
      await service?.stop();
      await heat?.close();
      client?.disconnect();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('both consumer projects compile as a whole (no project-wide error)', () => {
      expect(diagnostics.cjs.get('(project)') ?? []).to.deep.equal([]);
      expect(diagnostics.esm.get('(project)') ?? []).to.deep.equal([]);
    });

    const files = [...new Set(blocks.map((b) => b.file))];
    for (const file of files) {
      const runnable = blocks.filter((b) => b.file === file && !b.notRun && (b.kind === 'ts' || b.kind === 'sh' || b.kind === 'python'));
      if (runnable.length === 0) continue;
      describe(file, () => {
        before(async function () {
          this.timeout(30000);
          // Each page starts from the deployment guide's Test 1 inputs, with budgets written.
          await client.flushall();
          await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
          await eventually(async () => (await client.exists('quantum:portfolio:budget:BTCUSDT')) === 1, 15000);
        });

        for (const block of runnable) {
          if (block.kind === 'ts') {
            for (const flavor of ['cjs', 'esm'] as const) {
              it(`${file}:${block.line} (TypeScript) compiles in a ${flavor === 'cjs' ? 'CommonJS' : 'ESM'} consumer and runs to its end`, async () => {
                expect(diagnostics[flavor].get(`${slug(block)}.ts`) ?? [], `${file}:${block.line} in ${flavor}`).to.deep.equal([]);
                const outcome = await run(process.execPath, [join('out', `${slug(block)}.js`)], { cwd: join(work, flavor), env, timeoutMs: 30000 });
                expectSuccess(outcome, block, flavor);
              });
            }
          } else if (block.kind === 'sh') {
            it(`${file}:${block.line} (shell) runs with exit code 0`, async () => {
              const outcome = await run('bash', ['-c', `set -eo pipefail\n${localize(block.code, to)}`], { cwd: work, env, timeoutMs: 45000 });
              expectSuccess(outcome, block, 'bash');
            });
          } else {
            it(`${file}:${block.line} (Python) runs with exit code 0`, async () => {
              const script = join(work, `${slug(block)}.py`);
              writeFileSync(script, localize(block.code, to));
              expectSuccess(await run(packagePython() ?? 'python3', [script], { cwd: work, env, timeoutMs: 30000 }), block, 'python3');
            });
          }
        }
      });
    }
  });
});
