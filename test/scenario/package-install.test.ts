import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');
const exec = promisify(execFile);
const npm = (args: string[], cwd: string) => exec('npm', args, { cwd, timeout: 240000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });

describe('npm pack: the tarball installs into an empty project and works there', function () {
  // Builds, packs and installs with npm (dependencies from the registry, or its cache): slow.
  this.timeout(300000);
  let dir: string;
  let tarball: string;
  let files: string[];
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p28-pack-'));
    const { stdout } = await npm(['pack', '--json', '--pack-destination', dir], ROOT);
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(dir, packed!.filename);
    files = packed!.files.map((f) => f.path);
    const project = join(dir, 'consumer');
    await exec('mkdir', [project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    // The README's install step: the tarball, and the container the gate registers in.
    await npm(['install', '--prefer-offline', '--no-package-lock', tarball, 'tsyringe', 'reflect-metadata'], project);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const inProject = (args: string[]) => exec(process.execPath, args, { cwd: join(dir, 'consumer'), timeout: 30000 });

  it('ships only the package: package.json, README and the built dist/ (JavaScript, declarations, Lua)', () => {
    const outside = files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md'].includes(f));
    expect(outside).to.deep.equal([]);
    expect(files.filter((f) => /^dist\/(test|bench|demo|scripts)\//.test(f))).to.deep.equal([]);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/lib/cli.js', 'dist/lib/redis/lua/release-lease-1.lua', 'dist/lib/redis/lua/decide-plan-1.lua', 'dist/lib/redis/lua/release-reservation-1.lua', 'dist/plugin/budget-gate.js']) {
      expect(files).to.include(f);
    }
  });

  it('require() gives the API, and the gate registers in a tsyringe container under PERMIT_GATE', async () => {
    const script = `
      require('reflect-metadata');
      const { container } = require('tsyringe');
      const api = require('portfolio-risk-governor');
      const child = container.createChildContainer();
      const gate = api.registerBudgetGate(child, { redisUrl: 'redis://127.0.0.1:1' });
      const gates = child.resolveAll(api.PERMIT_GATE);
      const budget = api.computeBudget({ equityUsd: 100000, portfolioHeat: 0.65, clusterStress: 0, volRegime: 0.33 }, { baseRiskPct: 0.02, alphaHeat: 0.4, betaCluster: 0.4, gammaVol: 0.2, minBudgetUsd: 500, maxBudgetUsd: 10000 });
      gate.evaluate({ planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 1 }).then(async (decision) => {
        await gate.close();
        console.log(JSON.stringify({ gates: gates.length, same: gates[0] === gate, name: gate.name, budget: Math.round(budget.budgetUsd), failOpen: decision.failOpen, exports: typeof api.startWorkerService }));
      });`;
    const { stdout } = await inProject(['-e', script]);
    expect(JSON.parse(stdout)).to.deep.equal({ gates: 1, same: true, name: 'p28_budget', budget: 1348, failOpen: true, exports: 'function' });
  });

  it('import works as well', async () => {
    const { stdout } = await inProject(['--input-type=module', '-e', "import { PERMIT_GATE, BudgetGate } from 'portfolio-risk-governor'; console.log(typeof PERMIT_GATE, typeof BudgetGate);"]);
    expect(stdout.trim()).to.equal('symbol function');
  });

  it('the build keeps the bin executable, so p28-worker runs from the checkout (npx) after it', async () => {
    // npm pack ran the build (prepack) just before.
    expect(statSync(join(ROOT, 'dist', 'lib', 'cli.js')).mode & 0o111).to.equal(0o111);
    const { stdout } = await exec('npx', ['--no-install', 'p28-worker', '--version'], { cwd: ROOT, timeout: 60000 });
    expect(stdout.trim()).to.equal(version);
  });

  it('the README names the commands this test runs: npm pack, then npm install of the tarball', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).to.contain('npm pack');
    expect(readme).to.match(/npm install \S*portfolio-risk-governor-\d+\.\d+\.\d+\.tgz tsyringe reflect-metadata/);
    expect(readme).to.contain(`portfolio-risk-governor-${version}.tgz`);
  });

  it('p28-worker --version runs from the installed bin', async () => {
    const { stdout } = await exec(join(dir, 'consumer', 'node_modules', '.bin', 'p28-worker'), ['--version'], { timeout: 30000 });
    expect(stdout.trim()).to.equal(version);
  });
});
