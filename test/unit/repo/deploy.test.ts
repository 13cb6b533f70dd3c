import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../../../lib/config';

const root = join(__dirname, '..', '..', '..');
const unitPath = join(root, 'deploy/systemd/quantum-portfolio-risk-governor.service');
const envPath = join(root, 'deploy/portfolio-risk-governor.env.example');

/** Tools from the OS: required in CI (`.ci/run` installs them), optional on a developer machine. */
function requireTool(ctx: Mocha.Context, tool: string, install: string): void {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0) return;
  if (process.env.CI) throw new Error(`${tool} is required in CI (${install})`);
  console.warn(`    skipped: ${tool} not installed (${install})`);
  ctx.skip();
}

function unitDirectives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

function envFile(text: string): [string, string][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    });
}

describe('systemd unit', () => {
  const unit = unitDirectives(readFileSync(unitPath, 'utf8'));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };

  it('starts the p28-worker bin of the package installed in WorkingDirectory', () => {
    const [workdir] = unit.get('WorkingDirectory')!;
    const [exec] = unit.get('ExecStart')!;
    const [node, script] = exec!.split(/\s+/);
    expect(node).to.match(/^\/.*\/node$/);
    expect(relative(workdir!, script!)).to.equal(pkg.bin['p28-worker']);
  });

  it('reads the env file the deployment guide names', () => {
    expect(unit.get('EnvironmentFile')).to.deep.equal(['/etc/quantum/portfolio-risk-governor.env']);
  });

  it('stops with SIGTERM and does not restart-loop on a configuration error (exit 2)', () => {
    expect(unit.get('KillSignal')).to.deep.equal(['SIGTERM']);
    expect(unit.get('Restart')).to.deep.equal(['on-failure']);
    expect(unit.get('RestartPreventExitStatus')).to.deep.equal(['2']);
  });

  it('passes systemd-analyze verify', function () {
    requireTool(this, 'systemd-analyze', 'apt-get install systemd');
    const result = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
    // Only the unit's own problems count; a container without systemd as PID 1 may warn about itself.
    const own = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.includes('quantum-portfolio-risk-governor.service'));
    expect(own).to.deep.equal([]);
  });
});

describe('example env file', () => {
  const entries = envFile(readFileSync(envPath, 'utf8'));

  it('lists exactly the variables loadConfig knows, in the same order', () => {
    expect(entries.map(([name]) => name)).to.deep.equal(CONFIG_VARIABLES.map((v) => v.env));
  });

  it('gives each variable its default (empty where the default is unset)', () => {
    const defaults = Object.fromEntries(CONFIG_VARIABLES.map((v) => [v.env, v.default ?? '']));
    expect(Object.fromEntries(entries)).to.deep.equal(defaults);
  });

  it('loads into the same configuration as an empty environment', () => {
    expect(loadConfig(Object.fromEntries(entries))).to.deep.equal(loadConfig({}));
  });
});
