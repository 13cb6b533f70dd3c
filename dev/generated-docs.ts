import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VARIABLES } from '../lib/config';

/**
 * The parts of the docs and deploy files that are generated from the code's declarations, so that
 * each contract is declared once: the configuration table and the example env file from
 * `CONFIG_VARIABLES`, the metric tables from the metric declarations. `npm run docs:gen` writes
 * them; `test/generated-docs.test.ts` fails while a committed file differs from what it would write.
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
    '# It may hold P28_API_TOKEN and a Redis password: keep it readable by root and the service user only.',
    '# Generated from CONFIG_VARIABLES in lib/config.ts by `npm run docs:gen`: edit that table, not this file.',
  ];
  const body = CONFIG_VARIABLES.flatMap((v) => ['', `# ${plain(v.description)}`, `${v.env}=${v.default ?? ''}`]);
  return `${[...header, ...body].join('\n')}\n`;
}

/** Every generated file; add a generator here and re-run `npm run docs:gen`. */
export const GENERATED: readonly Generated[] = [
  { file: 'docs/configuration.md', render: (page) => replaceSection(page, 'configuration', configurationTable()) },
  { file: 'deploy/portfolio-risk-governor.env.example', render: () => envExample() },
];

/** Each generated file with its current and its generated content. */
export function renderAll(root = ROOT): Array<{ file: string; current: string; generated: string }> {
  return GENERATED.map((g) => {
    const current = readFileSync(join(root, g.file), 'utf8');
    return { file: g.file, current, generated: g.render(current) };
  });
}
