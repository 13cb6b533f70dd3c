import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = join(__dirname, '..', '..', '..');
const depcruise = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Runs the layering check of `npm run lint` on a tree of files, with its output type. */
const run = (cwd: string, paths: string[], outputType: 'err' | 'json') =>
  spawnSync(process.execPath, [depcruise, ...paths, '--config', join(root, '.dependency-cruiser.cjs'), '--output-type', outputType], {
    cwd,
    encoding: 'utf8',
  });

/** The exit code of the check as `npm run lint` runs it, and the violations it found. */
function cruise(cwd: string, paths: string[]): { status: number | null; violations: Violation[] } {
  const output = JSON.parse(run(cwd, paths, 'json').stdout) as { summary: { violations: Violation[] } };
  return { status: run(cwd, paths, 'err').status, violations: output.summary.violations };
}

/** Writes `files` (path -> source) under a fresh temporary directory. */
function plant(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'p28-layering-'));
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), source);
  }
  return dir;
}

describe('layering check (npm run lint)', function () {
  this.timeout(60000);
  let dir: string;

  before(() => {
    dir = plant({
      'types/wire.ts': "import type { Gate } from '../plugin/gate';\nexport type Wire = Gate;\n",
      'plugin/gate.ts': "import { loadConfig } from '../lib/config';\nexport interface Gate { n: number }\nexport const load = loadConfig;\n",
      'lib/config.ts': 'export const loadConfig = (): number => 1;\n',
      'lib/redis/a.ts': "import { b } from './b';\nexport const a = (): number => b();\n",
      'lib/redis/b.ts': "import type { a } from './a';\nexport const b = (): number => 2;\nexport type A = typeof a;\n",
      'lib/engine/io.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
      'lib/redis/report.ts': "import type { Report } from '../mode-report';\nexport type Shown = Report;\n",
      'lib/mode-report.ts': 'export interface Report { mode: string }\n',
      'lib/worker/host.ts': "import type { Gate } from '../../plugin/gate';\nexport type Hosted = Gate;\n",
      'bench/run.ts': "import { stub } from '../test/support/stub';\nexport const s = stub;\n",
      'test/support/stub.ts': 'export const stub = 1;\n',
    });
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fails on a wrong-way arrow, a type-only one included', () => {
    const { status, violations } = cruise(dir, ['types', 'plugin', 'lib', 'bench', 'test']);
    expect(status).to.not.equal(0);
    const found = violations.map((v) => `${v.rule.name} ${v.from} -> ${v.to}`);
    expect(found).to.include('types-import-only-types types/wire.ts -> plugin/gate.ts');
    expect(found).to.include('plugin-never-loads-the-worker plugin/gate.ts -> lib/config.ts');
    expect(found).to.include('engine-and-types-do-no-io lib/engine/io.ts -> fs');
    expect(found).to.include('tools-import-no-tests bench/run.ts -> test/support/stub.ts');
    // A new file at the top of lib/ is in the CLI's room: Redis access may not import it.
    expect(found).to.include('redis-below-plugin-and-worker lib/redis/report.ts -> lib/mode-report.ts');
  });

  it('fails on an import cycle, even one closed by a type-only import', () => {
    const { violations } = cruise(dir, ['lib/redis/a.ts', 'lib/redis/b.ts']);
    expect(violations.map((v) => v.rule.name)).to.include('no-circular');
  });

  it('lets the worker host the gate (lib/worker -> plugin)', () => {
    const { violations } = cruise(dir, ['lib/worker', 'plugin']);
    expect(violations.filter((v) => v.from === 'lib/worker/host.ts')).to.deep.equal([]);
  });
});
