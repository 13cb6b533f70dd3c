import type { Redis } from 'ioredis';
import type { RedisClient } from './client';
import { redisModeOf } from './redis-modes';

export interface ScanResult {
  /** Every matching key once, in no particular order. */
  keys: string[];
  /** SCAN calls made (on a cluster, summed over the master nodes, which are scanned in parallel). */
  pages: number;
}

/**
 * Lists the keys matching `pattern` with SCAN, never KEYS, so a large keyspace does not block the
 * server. `count` is the COUNT hint per call: a large one keeps the number of round trips small
 * (one call covers the whole keyspace while it has fewer than `count` keys). On a Redis Cluster each
 * master node holds a part of the keyspace and is scanned on its own, all in parallel.
 */
export async function scanKeys(client: RedisClient, pattern: string, count: number): Promise<ScanResult> {
  const nodes = redisModeOf(client).scanNodes(client);
  const found = new Set<string>();
  const pages = await Promise.all(nodes.map((node) => scanNode(node, pattern, count, found)));
  return { keys: [...found], pages: pages.reduce((a, b) => a + b, 0) };
}

async function scanNode(node: Redis, pattern: string, count: number, found: Set<string>): Promise<number> {
  let cursor = '0';
  let pages = 0;
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    pages += 1;
    for (const key of keys) found.add(key);
    cursor = next;
  } while (cursor !== '0');
  return pages;
}
