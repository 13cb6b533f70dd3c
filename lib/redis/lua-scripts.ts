import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from './client';

/**
 * The worker's Lua scripts, each a file `lua/<name>-<numberOfKeys>.lua` next to this module
 * (`lib/redis/lua` in the sources, `dist/lib/redis/lua` once built) whose header documents KEYS,
 * ARGV and the reply; the key count is read from the `-N` suffix of the file name. They are defined on a client with ioredis `defineCommand` (EVALSHA, falling back to EVAL),
 * so they work in pipelines and, having one key each, on Redis Cluster.
 */
const SCRIPTS = {
  p28HoldLease: 'hold-lease-1.lua',
  p28ReleaseLease: 'release-lease-1.lua',
  p28AppendDecisions: 'append-decisions-1.lua',
} as const;

/** The number of keys a script takes, from its file name (`renew-lease-1.lua` takes one). */
export function scriptKeyCount(file: string): number {
  const match = /-(\d+)\.lua$/.exec(file);
  if (!match) throw new Error(`Lua script file ${file} does not end in -<numberOfKeys>.lua`);
  return Number(match[1]);
}

export type ScriptName = keyof typeof SCRIPTS;

export interface ScriptCommands {
  /** [2 renewed | 1 taken | 0 held by another, the tenure's epoch ('' when 0)]. */
  p28HoldLease(key: string, token: string, ttlMs: number): Promise<[number, string]>;
  p28ReleaseLease(key: string, token: string): Promise<number>;
  p28AppendDecisions(key: string, maxLen: number, ...entries: string[]): Promise<number>;
}

function loadScript(name: string): string {
  const path = join(__dirname, 'lua', name);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Lua script ${path} is missing; the build copies lib/redis/lua to dist/lib/redis/lua`, { cause: error });
  }
}

const defined = new WeakSet<RedisClient>();
let sources: Record<ScriptName, string> | undefined;

/** Defines every script on `client` once and returns it typed with the script commands. */
export function withScripts(client: RedisClient): RedisClient & ScriptCommands {
  if (!defined.has(client)) {
    sources ??= Object.fromEntries(
      Object.entries(SCRIPTS).map(([name, file]) => [name, loadScript(file)]),
    ) as Record<ScriptName, string>;
    for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
      client.defineCommand(name, { numberOfKeys: scriptKeyCount(SCRIPTS[name]), lua: sources[name] });
    }
    defined.add(client);
  }
  return client as RedisClient & ScriptCommands;
}
