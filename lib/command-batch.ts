import { ReplyError } from 'ioredis';
import type { RedisClient } from './redis';

/** One Redis command as name and arguments: `['hgetall', key]`. */
export type RedisCommand = readonly [name: string, ...args: (string | number)[]];

/** A plain command, or commands on one key run as MULTI/EXEC. */
export type BatchItem =
  | { readonly kind: 'command'; readonly command: RedisCommand }
  | { readonly kind: 'transaction'; readonly commands: readonly RedisCommand[] };

/**
 * The outcome of one batch item. For a transaction, `value` is the array of EXEC replies and
 * `error` the first failure (a queueing error aborts the transaction; a run-time error such as
 * WRONGTYPE fails that command only).
 */
export interface BatchOutcome {
  error: Error | null;
  value: unknown;
}

export const command = (...cmd: RedisCommand): BatchItem => ({ kind: 'command', command: cmd });
export const transaction = (commands: readonly RedisCommand[]): BatchItem => ({ kind: 'transaction', commands });

/**
 * Sends a batch of commands in one round trip and returns one outcome per item.
 *
 * Standalone and Sentinel: one pipeline, transactions embedded as MULTI ... EXEC, so a batch is one
 * write on the socket whatever its size. Redis Cluster: ioredis refuses a pipeline whose keys span
 * slots served by different nodes, and a MULTI across slots is a CROSSSLOT error on the server, so
 * every item is sent on its own (each transaction touches one key, hence one slot). ioredis writes
 * them to their nodes without waiting for replies, so the batch still costs one round trip of latency
 * per node rather than one per command.
 *
 * Errors Redis answered (a `ReplyError`, such as WRONGTYPE) come back in the item's outcome. Any
 * other error (connection closed, command timed out) means Redis could not be asked, and rejects the
 * whole batch: a dead connection must never pass for a missing or invalid key.
 */
export async function execBatch(client: RedisClient, items: readonly BatchItem[]): Promise<BatchOutcome[]> {
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

async function execPipeline(client: RedisClient, items: readonly BatchItem[]): Promise<BatchOutcome[]> {
  const queued: unknown[][] = [];
  // Index of the reply that carries each item's result (the command itself, or its EXEC).
  const replyIndex: number[] = [];
  for (const item of items) {
    if (item.kind === 'command') {
      queued.push([...item.command]);
    } else {
      queued.push(['multi']);
      for (const cmd of item.commands) queued.push([...cmd]);
      queued.push(['exec']);
    }
    replyIndex.push(queued.length - 1);
  }
  const replies = await client.pipeline(queued).exec();
  if (!replies) throw new Error('pipeline was discarded');
  return items.map((item, i) => {
    const [error, value] = replies[replyIndex[i]!] ?? [new Error('no reply'), undefined];
    if (item.kind === 'command') return { error: error ?? null, value };
    return transactionOutcome(error ?? null, value);
  });
}

async function execOneByOne(client: RedisClient, items: readonly BatchItem[]): Promise<BatchOutcome[]> {
  return Promise.all(
    items.map(async (item): Promise<BatchOutcome> => {
      try {
        if (item.kind === 'command') {
          const [name, ...args] = item.command;
          return { error: null, value: await client.call(name, ...args) };
        }
        const replies = await client.multi(item.commands.map((cmd) => [...cmd])).exec();
        if (!replies) return { error: new Error('transaction was discarded'), value: undefined };
        const firstError = replies.find(([error]) => error)?.[0] ?? null;
        return { error: firstError, value: replies.map(([, value]) => value) };
      } catch (error) {
        return { error: error as Error, value: undefined };
      }
    }),
  );
}

function transactionOutcome(execError: Error | null, value: unknown): BatchOutcome {
  if (execError) return { error: execError, value: undefined };
  if (!Array.isArray(value)) return { error: new Error('transaction was discarded'), value: undefined };
  const failed = value.find((reply): reply is Error => reply instanceof Error);
  return { error: failed ?? null, value };
}
