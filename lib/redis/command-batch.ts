import { ReplyError } from 'ioredis';
import type { RedisClient } from './client';

/** One Redis command as name and arguments: `['hgetall', key]`. */
export type RedisCommand = readonly [name: string, ...args: (string | number)[]];

/** The outcome of one command of a batch: its reply, or the error Redis answered. */
export interface BatchOutcome {
  error: Error | null;
  value: unknown;
}

export const command = (...cmd: RedisCommand): RedisCommand => cmd;

/**
 * Sends a batch of commands in one round trip and returns one outcome per item.
 * Commands may name scripts defined with `defineCommand` (see `lua-scripts.ts`).
 *
 * Standalone and Sentinel: one pipeline, so a batch is one write on the socket whatever its size.
 * Redis Cluster: ioredis refuses a pipeline whose keys span slots served by different nodes, so
 * every command is sent on its own (each touches one key, hence one slot). ioredis writes them to
 * their nodes without waiting for replies, so the batch still costs one round trip of latency per
 * node rather than one per command.
 *
 * Errors Redis answered (a `ReplyError`, such as WRONGTYPE) come back in the item's outcome. Any
 * other error (connection closed, command timed out) means Redis could not be asked, and rejects the
 * whole batch: a dead connection must never pass for a missing or invalid key.
 */
export async function execBatch(client: RedisClient, items: readonly RedisCommand[]): Promise<BatchOutcome[]> {
  if (items.length === 0) return [];
  const outcomes = client.isCluster ? await execOneByOne(client, items) : await execPipeline(client, items);
  const unanswered = outcomes.find((o) => o.error !== null && !isReplyError(o.error));
  if (unanswered) throw unanswered.error;
  return outcomes;
}

/** An error Redis itself answered, as opposed to one raised because no answer came. */
function isReplyError(error: Error): boolean {
  return error instanceof (ReplyError as ErrorConstructor);
}

async function execPipeline(client: RedisClient, items: readonly RedisCommand[]): Promise<BatchOutcome[]> {
  const replies = await client.pipeline(items as unknown as unknown[][]).exec();
  if (!replies) throw new Error('pipeline was discarded');
  return items.map((_, i) => {
    const [error, value] = replies[i] ?? [new Error('no reply'), undefined];
    return { error: error ?? null, value };
  });
}

type CommandMethod = (...args: (string | number)[]) => Promise<unknown>;

async function execOneByOne(client: RedisClient, items: readonly RedisCommand[]): Promise<BatchOutcome[]> {
  return Promise.all(
    items.map(async ([name, ...args]): Promise<BatchOutcome> => {
      try {
        // The client's own method, so that scripts defined with defineCommand work as well.
        const method = (client as unknown as Record<string, CommandMethod | undefined>)[name];
        const value = typeof method === 'function' ? await method.apply(client, args) : await client.call(name, ...args);
        return { error: null, value };
      } catch (error) {
        return { error: error as Error, value: undefined };
      }
    }),
  );
}
