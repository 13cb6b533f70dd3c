import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availablePlacements } from '../../bench/placement';
import { packagePython } from '../support/python';

describe('npm run bench (quick mode)', () => {
  it('runs every scenario against its own redis-server, prints the table and writes the same rows as JSON', function () {
    this.timeout(120000);
    const out = mkdtempSync(join(tmpdir(), 'p28-bench-'));
    try {
      const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(__dirname, '..', '..', 'bench', 'run.ts'), '--quick'], {
        cwd: join(__dirname, '..', '..'),
        encoding: 'utf8',
        env: { ...process.env, BENCH_RESULTS_DIR: out },
        // spawnSync blocks mocha's own timeout: a hung run must end here, as a failure.
        timeout: 110000,
        killSignal: 'SIGKILL',
      });
      expect(run.status, run.stderr).to.equal(0);
      for (const scenario of [
        'gate, serial evaluate() of a blocked plan vs raw HGETALL',
        'gate, serial evaluate() of a plan that reserves vs raw HGETALL',
        'decision script called directly (no gate), a plan that reserves, vs raw HGETALL',
        "a script that does nothing, called with the decision script's key and arguments, vs raw HGETALL",
        'Redis CPU (INFO commandstats): a plan that reserves and its release (two script calls) vs one HGETALL',
        'decision script, a plan that reserves, 300 live reservations on its symbol vs 5',
        // The Python Governor's paths, required wherever the package is installed (always in CI).
        ...(packagePython() === undefined && !process.env.CI
          ? []
          : [
              'Python check_portfolio_budget, a plan that reserves, vs the upstream',
              'Python check_portfolio_budget, a blocked plan, vs the upstream',
              'Python HTTP client (keep-alive) POST /v1/decisions vs the upstream',
              'Python check_portfolio_budget, 1000 decisions/s with the decision log vs without',
              'Python check_portfolio_budget, 1000 decisions/s, a second gate without the log vs the first',
            ]),
        'gate, 256 concurrent callers vs raw auto-pipelined HGETALL',
        'gate, reducing plan (no I/O)',
        'gate, Redis paused (SIGSTOP)',
        'gate, breaker open',
        'gate, serial evaluate() with the decision log vs without',
        'gate, 1000 decisions/s with the decision log vs without',
        'gate, 1000 decisions/s, a second gate without the log vs the first',
        'gate, CPU the decision log adds per decision',
        'replay --set BASE_RISK_PCT=0.015 over 5000 logged decisions',
        'worker RSS, 100 symbols',
        // Each worker figure under every core placement the machine allows.
        ...availablePlacements().map((p) => `, ${p.name}`).flatMap((where) => [
          `worker cycle, 1,000 symbols vs raw ioredis doing the same reads and writes${where} |`,
          `another client's HGETALL while 1,000-symbol cycles run, vs Redis idle${where} |`,
          `Redis during 1,000-symbol cycles${where} |`,
        ]),
      ]) {
        expect(run.stdout).to.contain(`| ${scenario}`);
      }
      const files = readdirSync(out);
      expect(files).to.have.length(1);
      expect(run.stdout).to.contain(join(out, files[0]!));
      const json = JSON.parse(readFileSync(join(out, files[0]!), 'utf8'));
      expect(json.quick).to.equal(true);
      expect(json.machine.cores).to.be.a('number');
      const tableRows = run.stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| scenario'));
      expect(json.rows).to.have.length(tableRows.length);
      for (const row of json.rows) {
        expect(row.value, row.scenario).to.be.a('number').and.satisfy(Number.isFinite);
        if (row.baseline !== undefined) expect(row.ratio ?? row.value / row.baseline).to.be.greaterThan(0);
      }
      // The paused-Redis row must never report a block: the bench throws if any decision blocked.
      expect(run.stdout).to.match(/\| gate, Redis paused \(SIGSTOP\) [^|]+\| max decision latency \(ms\) \| [\d.]+ \|/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
