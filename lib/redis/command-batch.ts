import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './client';
import { isReplyError } from './error-cause';
import { redisModeOf } from './redis-modes';
import { toChunks, toUnits, type BatchItem, type BatchOutcome } from './batch-plan';
import { sendOneByOne, sendPipeline } from './batch-send';

export { atomic, command, type AtomicCommands, type BatchItem, type BatchOutcome, type RedisCommand } from './batch-plan';

export const COMMAND_BATCH_DEFAULTS = Object.freeze({
  /**
   * Commands per pipeline. A batch of any size goes out in pipelines of about this many commands,
   * so no single pipeline outlives its time limit however large the book (50,000 symbols are
   * 100,000 reads), and the client never holds a whole batch's replies at once. Building and
   * writing one pipeline is synchronous (a few milliseconds per thousand commands), and the event
   * loop gets a turn between two, so this also bounds how long a worker's HTTP decisions can wait
   * behind a cycle's writes.
   */
  chunkCommands: 1000,
  /** Pipelines in flight at once: the next one keeps Redis busy while the client reads the replies of the last. */
  chunksInFlight: 2,
  /**
   * Largest MULTI/EXEC block, in commands. Redis serves no other client while it runs a block, so a
   * block is kept to a fraction of a millisecond (about 100 budget hashes); consecutive atomic items
   * share a block, which costs far less than one MULTI/EXEC each.
   */
  transactionCommands: 256,
  /**
   * Time each command in flight adds to the base limit (the client's command timeout): a pipeline's
   * commands wait for every command sent before them, so its time limit grows with their number.
   */
  perCommandMs: 0.05,
});

export interface BatchOptions {
  /** Default `COMMAND_BATCH_DEFAULTS.chunkCommands`. */
  chunkCommands?: number;
  /** Default `COMMAND_BATCH_DEFAULTS.chunksInFlight`. */
  chunksInFlight?: number;
  /** Default `COMMAND_BATCH_DEFAULTS.transactionCommands`. */
  transactionCommands?: number;
  /** Default `COMMAND_BATCH_DEFAULTS.perCommandMs`. */
  perCommandMs?: number;
  /** Base time limit in ms; default the client's `commandTimeout` (none when it has none). */
  baseTimeoutMs?: number;
}

/**
 * Sends a batch of commands and returns one outcome per item, in order.
 *
 * The batch goes out in pipelines of about `chunkCommands` commands, `chunksInFlight` of them at
 * a time. Each command's time limit is the base limit plus `perCommandMs` for every command in
 * flight when it is sent (its own pipeline's and the one ahead of it), so a large batch is never
 * held to the limit of one command, and a dead server still fails the batch within about the base
 * limit. Atomic items become MULTI/EXEC blocks: on standalone Redis and Sentinel, consecutive ones
 * share a block of up to `transactionCommands` commands; on Redis Cluster, where a transaction
 * cannot span slots, each is a block of its own, and plain commands are sent one by one (ioredis
 * writes them to their nodes without waiting for replies). Scripts defined with `defineCommand`
 * cannot be batched; call them directly.
 *
 * Errors Redis answered (a `ReplyError`, such as WRONGTYPE) come back in the item's outcome; in an
 * atomic item, the first error among its commands (a block refused as a whole, EXECABORT, fails
 * every item in it). Any other error (connection closed, command timed out) means Redis could not
 * be asked, and rejects the whole batch: a dead connection must never pass for a missing or invalid
 * key. No further pipeline is sent once one has failed that way.
 */
export async function execBatch(client: RedisClient, items: readonly BatchItem[], options: BatchOptions = {}): Promise<BatchOutcome[]> {
  if (items.length === 0) return [];
  const o = { ...COMMAND_BATCH_DEFAULTS, ...options };
  const mode = redisModeOf(client);
  const baseTimeoutMs = options.baseTimeoutMs ?? mode.commandTimeoutMs(client);
  const units = toUnits(items, mode.transactionsSpanKeys ? o.transactionCommands : 0);
  const chunks = toChunks(units, o.chunkCommands);
  const outcomes: BatchOutcome[] = new Array(items.length);

  let next = 0;
  let inFlight = 0;
  let failure: Error | undefined;
  const lane = async (): Promise<void> => {
    while (next < chunks.length && !failure) {
      // Building and writing a pipeline is synchronous: let the event loop serve what waits (the
      // HTTP decisions of a worker) between two, not only after the whole batch.
      if (next > 0) await new Promise((resolve) => setImmediate(resolve));
      if (next >= chunks.length || failure) break;
      const chunk = chunks[next++]!;
      inFlight += chunk.commands;
      const timeoutMs = baseTimeoutMs === undefined ? undefined : baseTimeoutMs + inFlight * o.perCommandMs;
      try {
        if (mode.transactionsSpanKeys) await sendPipeline(client as Redis, chunk, timeoutMs, outcomes);
        else await sendOneByOne(client as Cluster, chunk, timeoutMs, outcomes);
        for (let i = chunk.first; i < chunk.first + chunk.items; i++) {
          const error = outcomes[i]!.error;
          if (error && !isReplyError(error)) failure ??= error;
        }
      } catch (error) {
        failure ??= error as Error;
      } finally {
        inFlight -= chunk.commands;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.chunksInFlight, chunks.length) }, lane));
  if (failure) throw failure;
  return outcomes;
}
