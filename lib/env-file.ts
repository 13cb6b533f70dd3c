import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/** An env file the CLI cannot read as the service manager would; exit code 2 like a bad configuration. */
export class EnvFileError extends Error {
  override readonly name = 'EnvFileError';
  readonly code = 'P28_ENV_FILE';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/**
 * Lines whose value the dotenv grammar (`util.parseEnv`) and systemd's `EnvironmentFile=` would read
 * differently: an unquoted value with a `#` (systemd keeps it, dotenv cuts a comment off) or a
 * backslash (systemd takes it as an escape), a double-quoted value with a backslash, or anything
 * after a closing quote. Refusing them keeps the CLI on the very values the service runs with,
 * instead of quietly talking to another Redis.
 */
function ambiguousLines(text: string): string[] {
  const problems: string[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const eq = trimmed.indexOf('=');
    if (eq < 0) continue;
    const value = trimmed.slice(eq + 1).trim();
    const where = `line ${i + 1} (${trimmed.slice(0, eq).trim()})`;
    if (value.startsWith("'")) {
      if (!/^'[^']*'$/.test(value)) problems.push(`${where}: text after the closing quote`);
    } else if (value.startsWith('"')) {
      if (!/^"[^"\\]*"$/.test(value)) problems.push(`${where}: a double-quoted value with a backslash, or text after the closing quote; use single quotes`);
    } else if (/[#\\]/.test(value) || value.startsWith('`')) {
      problems.push(`${where}: an unquoted value with '#' or a backslash, or that starts with a backquote; put the value in single quotes`);
    }
  }
  return problems;
}

/**
 * Reads an env file (`KEY=value` lines, `#` comments, values optionally in single or double quotes)
 * without a shell: no character in a value is evaluated, so a password with `'`, `$`, spaces or
 * backquotes arrives as written. Throws `EnvFileError` when the file cannot be read or holds a line
 * systemd would read otherwise. Never echoes a value.
 */
export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new EnvFileError(path, `cannot read the env file (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const problems = ambiguousLines(text);
  if (problems.length > 0) throw new EnvFileError(path, problems.join('; '));
  return parseEnv(text) as Record<string, string>;
}
