import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VARIABLES } from '../lib/config';
import type { MetricDeclaration } from '../lib/registry-metrics';
import { SERVER_CLOCK_METRICS } from '../lib/redis/server-clock';
import { CYCLE_HISTORY_METRICS } from '../lib/worker/cycle-history';
import { CYCLE_THREAD_METRICS } from '../lib/worker/cycle-thread';
import { KEY_PROBLEM_METRICS } from '../lib/worker/key-problems';
import { WORKER_METRICS } from '../lib/worker/worker-metrics';
import { DECISION_LOG_METRICS } from '../plugin/decision-log';
import { GATE_METRICS } from '../plugin/gate-metrics';
import { GATE_OPTION_SPECS, GATE_OTHER_OPTION_DOCS, type GateOptionSpec } from '../plugin/gate-options';
import { GOVERNOR_METRICS } from '../plugin/governor-metrics';
import { LOCAL_CACHE_METRICS } from '../plugin/local-cache';

/**
 * The parts of the docs and deploy files that are generated from the code's declarations, so that
 * each contract is declared once: the configuration table and the example env file from
 * `CONFIG_VARIABLES`, the metric tables from the metric declarations. `npm run docs:gen` writes
 * them; `test/unit/repo/generated-docs.test.ts` fails while a committed file differs from what it would write.
 */

const ROOT = join(__dirname, '..');

/** One generated file: the whole of it, or the named sections between markers in a hand-written page. */
interface Generated {
  file: string;
  /** The file's content as generated, given its current content (hand-written parts kept). */
  render(current: string): string;
}

/** A markdown table: header cells, then one row per item. Pipes inside cells are escaped. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** Markdown to the plain text of a comment: no backticks, links as their text. */
const plain = (markdown: string): string => markdown.replace(/`/g, '').replace(/\[([^\]]+)\]\([^)]+\)/g, '$1');

/**
 * Replaces the section `name` of a page, between `<!-- generated: name ... -->` and
 * `<!-- end generated: name -->`, with `body`. Throws when the markers are missing.
 */
export function replaceSection(page: string, name: string, body: string): string {
  const begin = new RegExp(`(<!-- generated: ${name}\\b[^>]*-->\\n)[\\s\\S]*?(\\n<!-- end generated: ${name} -->)`);
  if (!begin.test(page)) throw new Error(`no generated section "${name}" in the page`);
  return page.replace(begin, (_all, open: string, close: string) => `${open}${body}${close}`);
}

function configurationTable(): string {
  return table(
    ['variable', 'default', 'meaning'],
    CONFIG_VARIABLES.map((v) => {
      const shown = v.default ?? ('docDefault' in v ? v.docDefault : undefined);
      return [`\`${v.env}\``, shown === undefined ? 'unset' : `\`${shown}\``, v.description];
    }),
  );
}

function envExample(): string {
  const header = [
    '# /etc/quantum/portfolio-risk-governor.env: configuration of the P2.8 budget worker.',
    '# Every variable the worker reads, with its default. An empty value means "use the default".',
    '# The worker validates all of them at start and exits with code 2 naming every bad one.',
    "# Put a value with '#', a backslash or a leading quote in single quotes: systemd's EnvironmentFile=",
    '# and `p28-worker --env <this file>` then read it alike (the CLI refuses a line they would not).',
    '# It may hold P28_API_TOKEN and a Redis password: keep it readable by root and the service user only.',
    '# Generated from CONFIG_VARIABLES in lib/config.ts by `npm run docs:gen`: edit that table, not this file.',
  ];
  const body = CONFIG_VARIABLES.flatMap((v) => ['', `# ${plain(v.description)}`, `${v.env}=${v.default ?? ''}`]);
  return `${[...header, ...body].join('\n')}\n`;
}

/** The gate's options: the connection options, then the numeric ones with their unit and bounds, then the rest. */
function gateOptionTable(): string {
  const numeric = Object.entries(GATE_OPTION_SPECS as Record<string, GateOptionSpec>).map(([name, spec]) => {
    const bounds = `${spec.integer ? 'whole ' : ''}${spec.unit}, ${spec.min} to ${spec.max}`;
    return [`\`${name}\``, String(spec.default), `${spec.doc.replace(/\.$/, '')} (${bounds})`];
  });
  const others = Object.entries(GATE_OTHER_OPTION_DOCS).map(([name, o]) => [`\`${name}\``, o.default, o.doc]);
  const afterConnection = others.findIndex(([name]) => name === '`keyPrefix`') + 1;
  return table(['option', 'default', 'meaning'], [...others.slice(0, afterConnection), ...numeric, ...others.slice(afterConnection)]);
}

/** A metric table: name, type, labels (with their values where the set is closed), meaning. */
function metricTable(firstHeader: string, declarations: Record<string, MetricDeclaration>): string {
  return table(
    [firstHeader, 'type', 'labels', 'meaning'],
    Object.values(declarations).map((d) => {
      const values = d.labelValues as Record<string, readonly string[] | undefined> | undefined;
      const labels = (d.labelNames ?? []).map((l) => (values?.[l] ? `\`${l}\` (${values[l]!.join(', ')})` : `\`${l}\``));
      const buckets = d.buckets ? ` Buckets ${d.buckets[0]} to ${d.buckets[d.buckets.length - 1]}.` : '';
      return [`\`${d.name}\``, d.type, labels.join(', ') || '-', `${d.help}${buckets}`];
    }),
  );
}

const metricSections = (page: string): string =>
  [
    ['worker metrics', metricTable('metric', { ...WORKER_METRICS, ...KEY_PROBLEM_METRICS, ...SERVER_CLOCK_METRICS, ...CYCLE_THREAD_METRICS })],
    ['gate metrics', metricTable('metric', GATE_METRICS)],
    ['local cache metrics', metricTable('local cache metric', LOCAL_CACHE_METRICS)],
    ['decision log metrics', metricTable('decision log metric', { ...DECISION_LOG_METRICS, ...CYCLE_HISTORY_METRICS })],
    ['pipeline metrics', metricTable('metric', GOVERNOR_METRICS)],
  ].reduce((text, [name, body]) => replaceSection(text, name!, body!), page);

/** Every generated file; add a generator here and re-run `npm run docs:gen`. */
export const GENERATED: readonly Generated[] = [
  { file: 'docs/configuration.md', render: (page) => replaceSection(page, 'configuration', configurationTable()) },
  { file: 'deploy/portfolio-risk-governor.env.example', render: () => envExample() },
  { file: 'docs/metrics.md', render: metricSections },
  { file: 'docs/gate.md', render: (page) => replaceSection(page, 'gate options', gateOptionTable()) },
];

/** Each generated file with its current and its generated content. */
export function renderAll(root = ROOT): Array<{ file: string; current: string; generated: string }> {
  return GENERATED.map((g) => {
    const current = readFileSync(join(root, g.file), 'utf8');
    return { file: g.file, current, generated: g.render(current) };
  });
}
