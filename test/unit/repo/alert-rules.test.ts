import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { WorkerMetrics } from '../../../lib/worker/worker-metrics';
import { CYCLE_THREAD_METRICS } from '../../../lib/worker/cycle-thread';
import { metricOn } from '../../../lib/registry-metrics';
import { GateMetrics } from '../../../plugin/gate-metrics';
import { PermitPipeline } from '../../../plugin/permit-pipeline';

const dir = join(__dirname, '..', '..', '..', 'deploy', 'prometheus');

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
      'P28HighStaleSymbolInputRate',
      'P28RedisWriteFailures',
      'P28BudgetsNotWritten',
      'P28NoLeader',
      'P28SeveralLeaders',
      'P28GateFailOpenRate',
      'P28GateBreakerOpen',
      'P28CycleThreadRestarting',
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

describe('alert rules and exported metrics', () => {
  /** Every metric name a rule's expression reads (identifiers followed by a selector, range or space). */
  function metricsUsed(expr: string): string[] {
    const functionsAndKeywords = new Set(['sum', 'max', 'rate', 'time', 'clamp_min', 'by', 'on', 'group_left', 'and', 'or', 'unless']);
    // Label matchers ({result=~"ok"}) and durations ([5m]) are removed first; what is left that is
    // not a function, a keyword or a number is a metric name.
    const bare = expr.replace(/\{[^}]*\}/g, '').replace(/\[[^\]]*\]/g, '').replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
    const names = [...bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!);
    return [...new Set(names)].filter((name) => !functionsAndKeywords.has(name) && !/^\d/.test(name) && !/^e\d+$/.test(name));
  }

  it('reads only metrics that the worker, the gate or the pipeline export (or Prometheus up)', async () => {
    const registry = new Registry();
    new WorkerMetrics(registry);
    new GateMetrics(registry);
    new PermitPipeline([], { registry });
    metricOn(registry, CYCLE_THREAD_METRICS.restarts);
    const exported = new Set<string>(['up']);
    for (const metric of await registry.getMetricsAsJSON()) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
    }
    const used = alertRules().flatMap((r) => metricsUsed(r.expr).map((name) => ({ alert: r.alert, name })));
    expect(used.length).to.be.greaterThan(8);
    expect(used.filter((u) => !exported.has(u.name))).to.deep.equal([]);
  });

  it('finds the metric names in an expression and ignores functions and labels', () => {
    expect(metricsUsed('sum by (input_type) (rate(p28_stale_input_total[5m])) / clamp_min(sum(rate(p28_cycles_total{result=~"ok"}[5m])), 1e-9) > 0.1')).to.deep.equal([
      'p28_stale_input_total',
      'p28_cycles_total',
    ]);
    expect(metricsUsed('time() - max(p28_last_success_timestamp_seconds) > 15')).to.deep.equal(['p28_last_success_timestamp_seconds']);
    expect(metricsUsed('up{job="x"} == 0')).to.deep.equal(['up']);
  });
});
