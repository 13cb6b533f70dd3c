import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const dir = join(__dirname, '..', 'deploy', 'prometheus');

function requirePromtool(ctx: Mocha.Context): void {
  if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0) return;
  if (process.env.CI) throw new Error('promtool is required in CI (apt-get install prometheus)');
  console.warn('    skipped: promtool not installed (apt-get install prometheus)');
  ctx.skip();
}

interface Rule {
  alert: string;
  expr: string;
}

export function alertRules(): Rule[] {
  const doc = parse(readFileSync(join(dir, 'p28-alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

describe('Prometheus alert rules', () => {
  it('includes the guide\'s three alerts and the operator alerts of this package', () => {
    expect(alertRules().map((r) => r.alert)).to.have.members([
      'P28BudgetEngineDown',
      'P28HighStaleInputRate',
      'P28RedisWriteFailures',
      'P28WorkerCycleNotSucceeding',
      'P28NoLeader',
      'P28SeveralLeaders',
      'P28GateFailOpenRate',
      'P28GateBreakerOpen',
    ]);
  });

  it('pass promtool check rules', function () {
    requirePromtool(this);
    const result = spawnSync('promtool', ['check', 'rules', 'p28-alerts.yml'], { cwd: dir, encoding: 'utf8' });
    expect(result.status, result.stdout + result.stderr).to.equal(0);
  });

  it('pass their promtool unit tests (firing and not firing for each alert)', function () {
    this.timeout(60000);
    requirePromtool(this);
    const result = spawnSync('promtool', ['test', 'rules', 'p28-alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(result.status, result.stdout + result.stderr).to.equal(0);
  });

  it('have a promtool test for every alert', () => {
    const tests = parse(readFileSync(join(dir, 'p28-alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    expect([...firing].sort()).to.deep.equal(alertRules().map((r) => r.alert).sort());
  });
});
