import { expect } from 'chai';
import { registerClockSkewGauge } from '../lib/redis/server-clock';
import { KeyProblems } from '../lib/worker/key-problems';
import { silentLogger } from '../lib/logger';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { CONFIG_VARIABLES } from '../lib/config';
import { WorkerMetrics } from '../lib/worker/worker-metrics';
import { GATE_OPTION_SPECS, BUDGET_GATE_DEFAULTS } from '../plugin/gate-options';
import { GateMetrics } from '../plugin/gate-metrics';
import { GovernorMetrics } from '../plugin/governor-metrics';
import { LocalCacheMetrics } from '../plugin/local-cache';

const root = join(__dirname, '..');
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
  for (const file of ['README.md', 'docs/configuration.md']) {
    it(`${file} lists every environment variable of CONFIG_VARIABLES, in order, with its default`, () => {
      const rows = tableRows(read(file), 'variable');
      expect(rows.map((r) => code(r[0])), file).to.deep.equal(CONFIG_VARIABLES.map((v) => v.env));
      for (const [i, spec] of CONFIG_VARIABLES.entries()) expectDefaultCell(rows[i]![1], spec.default, `${file} ${spec.env}`);
    });
  }

  it('docs/gate.md lists every numeric gate option with the default of GATE_OPTION_SPECS', () => {
    const rows = new Map(tableRows(read('docs/gate.md'), 'option').map((r) => [code(r[0]), r]));
    for (const [name, spec] of Object.entries(GATE_OPTION_SPECS)) {
      expect(rows.has(name), `docs/gate.md option ${name}`).to.equal(true);
      expect(Number(code(rows.get(name)![1])), `docs/gate.md default of ${name}`).to.equal(spec.default);
    }
    expect(code(rows.get('keyPrefix')?.[1])).to.equal(BUDGET_GATE_DEFAULTS.keyPrefix);
  });

  it('docs/metrics.md and the README name exactly the metrics the worker, the gate and the pipeline export', async () => {
    const registry = new Registry();
    new GateMetrics(registry);
    new GovernorMetrics(registry);
    // Registered by the parts that own them: the clock (worker and gate) and the key checks (worker).
    registerClockSkewGauge(registry, { skewSeconds: 0 });
    const worker = new WorkerMetrics();
    new KeyProblems(worker.registry, silentLogger);
    const exported = [...worker.registry.getMetricsAsArray(), ...registry.getMetricsAsArray()].map((m) => m.name).sort();
    const documented = tableRows(read('docs/metrics.md'), 'metric').map((r) => code(r[0])).sort();
    expect(documented).to.deep.equal(exported);
    const readmeNames = new Set(read('README.md').match(/\b(?:p28|quantum_govern)_[a-z_]+/g));
    for (const name of exported) expect(readmeNames.has(name), `README names ${name}`).to.equal(true);
  });

  it('docs/metrics.md names exactly the metrics the gate adds with localCache', () => {
    const registry = new Registry();
    new LocalCacheMetrics(registry);
    const exported = registry.getMetricsAsArray().map((m) => m.name).sort();
    const documented = tableRows(read('docs/metrics.md'), 'local cache metric').map((r) => code(r[0])).sort();
    expect(documented).to.deep.equal(exported);
  });
});
