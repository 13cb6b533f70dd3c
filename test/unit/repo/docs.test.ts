import { expect } from 'chai';
import { registerClockSkewGauge } from '../../../lib/redis/server-clock';
import { KeyProblems } from '../../../lib/worker/key-problems';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { CONFIG_VARIABLES } from '../../../lib/config';
import { budgetTable } from '../../../lib/cli';
import { WorkerMetrics } from '../../../lib/worker/worker-metrics';
import { GATE_OPTION_SPECS, BUDGET_GATE_DEFAULTS } from '../../../plugin/gate-options';
import { GateMetrics } from '../../../plugin/gate-metrics';
import { GovernorMetrics } from '../../../plugin/governor-metrics';
import { LocalCacheMetrics } from '../../../plugin/local-cache';
import { DecisionLog } from '../../../plugin/decision-log';
import { cycleHistoryWriteFailures } from '../../../lib/worker/cycle-history';
import { CYCLE_THREAD_METRICS } from '../../../lib/worker/cycle-thread';
import { metricOn } from '../../../lib/registry-metrics';
import { silentLogger } from '../../../lib/logger';
import { DECISION_LOG_FIELDS, DecisionLogEntry, unpackDecisionLogEntry } from '../../../types/decision-log-entry';

const root = join(__dirname, '..', '..', '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

/** The rows of every markdown table whose first header cell is `firstHeader`, as cell arrays. */
function tableRows(markdown: string, firstHeader: string): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells[0] === firstHeader) inTable = true;
    else if (inTable && !/^-+$/.test(cells[0] ?? '')) rows.push(cells);
  }
  return rows;
}

const code = (cell: string | undefined): string => (cell ?? '').replace(/^`|`$/g, '');

/** How a spec default is shown in a docs table: `value`, or "unset" / a `<placeholder>` when there is none. */
function expectDefaultCell(cell: string | undefined, expected: string | undefined, where: string): void {
  if (expected === undefined) expect(cell, where).to.match(/^(unset|`<.+>`)$/);
  else expect(code(cell), where).to.equal(expected);
}

describe('docs tables against the spec tables', () => {
  it('docs/configuration.md lists every environment variable of CONFIG_VARIABLES, in order, with its default', () => {
    const rows = tableRows(read('docs/configuration.md'), 'variable');
    expect(rows.map((r) => code(r[0]))).to.deep.equal(CONFIG_VARIABLES.map((v) => v.env));
    for (const [i, spec] of CONFIG_VARIABLES.entries()) expectDefaultCell(rows[i]![1], spec.default, `docs/configuration.md ${spec.env}`);
  });

  it('the README names at most five variables, each with the default of CONFIG_VARIABLES, and links to the full table', () => {
    const rows = tableRows(read('README.md'), 'variable');
    expect(rows.length).to.be.within(1, 5);
    for (const row of rows) {
      const spec = CONFIG_VARIABLES.find((v) => v.env === code(row[0]));
      expect(spec, `README variable ${row[0]}`).not.to.equal(undefined);
      expectDefaultCell(row[1], spec!.default, `README ${spec!.env}`);
    }
    expect(read('README.md')).to.contain('(docs/configuration.md)');
  });

  it('each table of variables and of metrics has one home: no other page repeats it', () => {
    const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const withVariableTable = pages.filter((p) => tableRows(read(p), 'variable').length > 5);
    expect(withVariableTable).to.deep.equal(['docs/configuration.md']);
    const withMetricTable = pages.filter((p) => tableRows(read(p), 'metric').length > 0);
    expect(withMetricTable).to.deep.equal(['docs/metrics.md']);
  });

  it('every `p28-worker budgets` table shown in the docs has the columns the command prints', () => {
    const header = budgetTable([], 0).trim();
    const shown = ['README.md', 'docs/operations.md'].flatMap((f) => read(f).split('\n').filter((l) => l.startsWith('SYMBOL ')));
    expect(shown).to.have.length.greaterThan(1);
    for (const line of shown) expect(line.split(/\s+/)).to.deep.equal(header.split(/\s+/));
  });

  it('operations names where the deployment guide and the worker differ, and the worker prints what it says', async () => {
    const metrics = new WorkerMetrics();
    metrics.setMode('enforce');
    expect(await metrics.registry.metrics()).to.match(/^p28_enforce_mode 1$/m);
    const ops = read('docs/operations.md');
    expect(ops).to.contain('p28_enforce_mode 1.0').and.contain('prom-client prints');
    expect(ops).to.contain('Starting budget compute loop');
    expect(ops).to.match(/immediately removes P2\.8 gating.*BUDGET_HASH_TTL_SEC/s);
  });

  it('every test file the docs name exists', () => {
    const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const named = pages.flatMap((page) => [...read(page).matchAll(/\btest\/[\w./-]+\.test\.ts\b/g)].map((m) => ({ page, file: m[0] })));
    expect(named.length).to.be.greaterThan(5);
    for (const { page, file } of named) expect(existsSync(join(root, file)), `${page} names ${file}`).to.equal(true);
  });

  it('the README is a front page of at most 200 lines', () => {
    expect(read('README.md').split('\n').length).to.be.at.most(200);
  });

  it('docs/gate.md lists every numeric gate option with the default of GATE_OPTION_SPECS', () => {
    const rows = new Map(tableRows(read('docs/gate.md'), 'option').map((r) => [code(r[0]), r]));
    for (const [name, spec] of Object.entries(GATE_OPTION_SPECS)) {
      expect(rows.has(name), `docs/gate.md option ${name}`).to.equal(true);
      expect(Number(code(rows.get(name)![1])), `docs/gate.md default of ${name}`).to.equal(spec.default);
    }
    expect(code(rows.get('keyPrefix')?.[1])).to.equal(BUDGET_GATE_DEFAULTS.keyPrefix);
  });

  it('docs/metrics.md names exactly the metrics the worker, the gate and the pipeline export', async () => {
    const registry = new Registry();
    new GateMetrics(registry);
    new GovernorMetrics(registry);
    // Registered by the parts that own them: the clock (worker and gate) and the key checks (worker).
    registerClockSkewGauge(registry, { skewSeconds: 0 });
    // Registered by the service when the cycle runs in a thread of its own.
    metricOn(registry, CYCLE_THREAD_METRICS.restarts);
    const worker = new WorkerMetrics();
    new KeyProblems(worker.registry, silentLogger);
    const exported = [...worker.registry.getMetricsAsArray(), ...registry.getMetricsAsArray()].map((m) => m.name).sort();
    const documented = tableRows(read('docs/metrics.md'), 'metric').map((r) => code(r[0])).sort();
    expect(documented).to.deep.equal(exported);
  });

  it('docs/metrics.md names exactly the metrics of the decision log and the cycle history', () => {
    const registry = new Registry();
    new DecisionLog({ client: {} as never, streamKey: 'k', maxLen: 1, instanceId: 'i', via: 'node', policy: { staleAfterMs: 1, violationWindowMs: 1, maxClockSkewMs: 1, forceShadow: false }, registry, logger: silentLogger });
    cycleHistoryWriteFailures(registry);
    const exported = registry.getMetricsAsArray().map((m) => m.name).sort();
    const documented = tableRows(read('docs/metrics.md'), 'decision log metric').map((r) => code(r[0])).sort();
    expect(documented).to.deep.equal(exported);
  });

  it('docs/decision-log.md lists every value of a decision log entry, in order, as the schema describes it', () => {
    const rows = tableRows(read('docs/decision-log.md'), 'value');
    expect(rows.map((r) => code(r[0]))).to.deep.equal([...DECISION_LOG_FIELDS]);
    for (const row of rows) expect(row[1], code(row[0])).to.equal(DecisionLogEntry.shape[code(row[0]) as keyof typeof DecisionLogEntry.shape].description);
  });

  it('the example entry in docs/decision-log.md is a valid decision log entry', () => {
    const packed = /XADD quantum:stream:p28\.decisions MAXLEN ~ \d+ \* d "([^"]+)"/.exec(read('docs/decision-log.md'))?.[1];
    const values = unpackDecisionLogEntry(packed ?? '');
    expect(values, 'unpacks').to.not.equal(undefined);
    expect(DecisionLogEntry.safeParse(values).success).to.equal(true);
  });

  it('docs/metrics.md names exactly the metrics the gate adds with localCache', () => {
    const registry = new Registry();
    new LocalCacheMetrics(registry);
    const exported = registry.getMetricsAsArray().map((m) => m.name).sort();
    const documented = tableRows(read('docs/metrics.md'), 'local cache metric').map((r) => code(r[0])).sort();
    expect(documented).to.deep.equal(exported);
  });
});
