import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The fenced code blocks of the documentation, as a doc-test harness runs them. Every block names its
 * language; a runnable one (TypeScript, shell, Python) is run unless an HTML comment right above its
 * fence says why not:
 *
 *     <!-- doc-test: not-run: installs a systemd unit on the host -->
 *
 * Blocks in any other known language are output or data (`text`, `json`, ...); JSON is parsed.
 */

/** What the harness does with a block. */
export type BlockKind = 'ts' | 'sh' | 'python' | 'json' | 'output';

export interface DocBlock {
  /** The markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word, as written. */
  lang: string;
  kind: BlockKind;
  /** The block's text, its fence's indentation removed. */
  code: string;
  /** Why the block is not run; undefined when it is. */
  notRun?: string;
}

const KINDS: Record<string, BlockKind> = {
  ts: 'ts',
  typescript: 'ts',
  bash: 'sh',
  sh: 'sh',
  shell: 'sh',
  python: 'python',
  py: 'python',
  json: 'json',
  text: 'output',
  console: 'output',
  yaml: 'output',
  promql: 'output',
  redis: 'output',
  ini: 'output',
  http: 'output',
  diff: 'output',
};

/** The languages a fence may name. */
export const KNOWN_LANGUAGES: readonly string[] = Object.keys(KINDS);

/** Why extraction refused a file: a block without a language, an unknown one, a marker without a reason. */
export class DocBlockError extends Error {
  override readonly name = 'DocBlockError';
}

const NOT_RUN = /^<!--\s*doc-test:\s*not-run:\s*(.*?)\s*-->$/;
const ANY_MARKER = /^<!--\s*doc-test:/;

/** Every fenced block of one markdown text. */
export function extractBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open as unknown as [string, string, string, string];
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !(lines[i]!.trim().startsWith(fence) && lines[i]!.trim().replace(/[`~]/g, '') === ''); i++) {
      body.push(lines[i]!.startsWith(indent) ? lines[i]!.slice(indent.length) : lines[i]!.trimStart());
    }
    const where = `${file}:${start + 1}`;
    if (lang === '') throw new DocBlockError(`${where}: a code block without a language; name it (${KNOWN_LANGUAGES.join(', ')}), text for output`);
    const kind = KINDS[lang.toLowerCase()];
    if (kind === undefined) throw new DocBlockError(`${where}: unknown language ${JSON.stringify(lang)}; use one of ${KNOWN_LANGUAGES.join(', ')}`);
    const block: DocBlock = { file, line: start + 1, lang, kind, code: body.join('\n') + '\n' };
    const above = lines.slice(0, start).reverse().find((l) => l.trim() !== '')?.trim() ?? '';
    if (ANY_MARKER.test(above)) {
      const reason = NOT_RUN.exec(above)?.[1];
      if (reason === undefined) throw new DocBlockError(`${where}: unknown doc-test marker ${above}; the one marker is <!-- doc-test: not-run: <reason> -->`);
      if (reason.length < 10) throw new DocBlockError(`${where}: a not-run marker needs a reason a reader understands, got ${JSON.stringify(reason)}`);
      block.notRun = reason;
    }
    blocks.push(block);
  }
  return blocks;
}

/** README.md and every markdown file under docs/, in a stable order. */
export function documentationFiles(root: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))
      .flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : entry.name.endsWith('.md') ? [join(dir, entry.name)] : []));
  return ['README.md', ...walk(join(root, 'docs')).map((f) => relative(root, f))];
}

/** Every block of the documentation. */
export function documentationBlocks(root: string): DocBlock[] {
  return documentationFiles(root).flatMap((file) => extractBlocks(file, readFileSync(join(root, file), 'utf8')));
}

/**
 * The addresses a documented command uses, mapped to the private ones of a test run, so that no
 * block ever reaches a real Redis, worker or heat gate: the default Redis URL, the worker's port
 * 8049, the heat gate's 8056, and the install directory of the operations page.
 */
export interface Addresses {
  redisUrl: string;
  workerPort: number;
  heatPort: number;
  installDir: string;
}

/** The block's code with the documented addresses replaced by the private ones. */
export function localize(code: string, to: Addresses): string {
  return code
    .replace(/redis:\/\/(?:127\.0\.0\.1|localhost):6379(?:\/0)?/g, to.redisUrl)
    .replace(/\b(localhost|127\.0\.0\.1):8049\b/g, `$1:${to.workerPort}`)
    .replace(/\b(localhost|127\.0\.0\.1):8056\b/g, `$1:${to.heatPort}`)
    .replace(/\/opt\/quantum\/portfolio-risk-governor/g, to.installDir);
}

/** A block that would still reach port 6379 after `localize` (a bare `redis-cli` is redirected separately). */
export function namesSharedRedis(code: string): boolean {
  return /:6379\b|(?:-p|--port)\s+6379\b/.test(code);
}
