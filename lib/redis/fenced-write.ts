import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { execBatch, type BatchItem, type BatchOptions, type BatchOutcome, type RedisCommand } from './command-batch';
import type { RedisClient } from './client';

/** The fencing token of a leader's tenure (`LeaderLease.fence`). */
export interface Fence {
  /** Redis TIME in microseconds when the tenure began, as digits; larger for every later tenure. */
  epoch: string;
  /** The lease key and the value it holds during this tenure (`<token>/<epoch>`). */
  leaseKey: string;
  leaseValue: string;
}

/** The reply of `fenced-write-1.lua`. */
export const FENCED_WRITE = Object.freeze({ written: 1, newerWriter: 0, leaseLost: -1 });

/** The field every fenced write stores its epoch in (checked on Redis Cluster). */
export const WRITER_EPOCH_FIELD = 'writer_epoch';

let source: { lua: string; sha: string } | undefined;

function script(): { lua: string; sha: string } {
  if (!source) {
    const path = join(__dirname, 'lua', 'fenced-write-1.lua');
    const lua = readFileSync(path, 'utf8');
    source = { lua, sha: createHash('sha1').update(lua).digest('hex') };
  }
  return source;
}

/**
 * The command that writes one hash under `fence`: HDEL of `del`, HSET of `fields` and EXPIRE
 * `ttlSec` (0: none), applied only while the fence holds. On standalone Redis and Sentinel the
 * lease key itself is checked (one slot, no limit); on Redis Cluster, where the lease lives in
 * another slot, the hash's own `writer_epoch`. Send it with `execFencedBatch`.
 */
export function fencedWriteCommand(client: RedisClient, fence: Fence, key: string, ttlSec: number, del: readonly string[], fields: Record<string, string>): RedisCommand {
  const keys = client.isCluster ? [key] : [key, fence.leaseKey];
  const args: (string | number)[] = ['evalsha', script().sha, keys.length, ...keys, fence.epoch, fence.leaseValue, ttlSec, del.length, ...del];
  for (const name in fields) args.push(name, fields[name]!);
  return args as unknown as RedisCommand;
}

const loadedOn = new WeakSet<RedisClient>();

const isNoScript = (outcome: BatchOutcome | undefined): boolean => outcome?.error?.message.startsWith('NOSCRIPT') === true;

/** Loads the script on the server (every master of a Cluster) so EVALSHA finds it. */
async function loadScript(client: RedisClient): Promise<void> {
  const { lua } = script();
  if (client.isCluster) await Promise.all((client as Cluster).nodes('master').map((node) => node.script('LOAD', lua)));
  else await (client as Redis).script('LOAD', lua);
}

/**
 * `execBatch` for batches holding `fencedWriteCommand`s: a server that does not know the script
 * yet (first write, a restarted master, a failover) answers NOSCRIPT; the script is then loaded
 * and only those items are sent again, once.
 */
export async function execFencedBatch(client: RedisClient, items: readonly BatchItem[], options?: BatchOptions): Promise<BatchOutcome[]> {
  if (!loadedOn.has(client)) {
    // Loaded ahead of the first batch, so a large first write is not sent twice.
    await loadScript(client);
    loadedOn.add(client);
  }
  const outcomes = await execBatch(client, items, options);
  const retry: number[] = [];
  outcomes.forEach((outcome, i) => {
    if (isNoScript(outcome)) retry.push(i);
  });
  if (retry.length === 0) return outcomes;
  await loadScript(client);
  const again = await execBatch(client, retry.map((i) => items[i]!), options);
  retry.forEach((at, i) => {
    outcomes[at] = again[i]!;
  });
  return outcomes;
}
