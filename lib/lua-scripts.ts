import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from './redis';

/**
 * The worker's Lua scripts, each a file `lua/<name>-<numberOfKeys>.lua` next to this module
 * (`lib/lua` in the sources, `dist/lib/lua` once built) whose header documents KEYS, ARGV and the
 * reply. They are defined on a client with ioredis `defineCommand` (EVALSHA, falling back to EVAL),
 * so they work in pipelines and, having one key each, on Redis Cluster.
 */
const SCRIPTS = {
  p28RenewLease: { file: 'renew-lease-1.lua', numberOfKeys: 1 },
  p28ReleaseLease: { file: 'release-lease-1.lua', numberOfKeys: 1 },
  p28WriteBudget: { file: 'write-budget-1.lua', numberOfKeys: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

export interface ScriptCommands {
  p28RenewLease(key: string, token: string, ttlMs: number): Promise<number>;
  p28ReleaseLease(key: string, token: string): Promise<number>;
  p28WriteBudget(key: string, ttlSec: number, deleteCount: number, ...rest: string[]): Promise<number>;
}

function loadScript(name: string): string {
  const path = join(__dirname, 'lua', name);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Lua script ${path} is missing; the build copies lib/lua to dist/lib/lua`, { cause: error });
  }
}

const defined = new WeakSet<RedisClient>();
let sources: Record<ScriptName, string> | undefined;

/** Defines every script on `client` once and returns it typed with the script commands. */
export function withScripts(client: RedisClient): RedisClient & ScriptCommands {
  if (!defined.has(client)) {
    sources ??= Object.fromEntries(
      Object.entries(SCRIPTS).map(([name, { file }]) => [name, loadScript(file)]),
    ) as Record<ScriptName, string>;
    for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
      client.defineCommand(name, { numberOfKeys: SCRIPTS[name].numberOfKeys, lua: sources[name] });
    }
    defined.add(client);
  }
  return client as RedisClient & ScriptCommands;
}
