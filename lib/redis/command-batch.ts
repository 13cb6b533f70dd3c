import { Command, Pipeline, ReplyError, type Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './client';

/** One Redis command as name and arguments: `['hgetall', key]`. */
export type RedisCommand = readonly [name: string, ...args: (string | number)[]];

/**
 * Commands Redis applies together (MULTI/EXEC): no other client sees the effect of some of them
 * without the others. All of them must touch the same key (or at least the same Cluster slot).
 */
export interface AtomicCommands {
  readonly atomic: readonly RedisCommand[];
}

/** One item of a batch: a command, or commands applied atomically. */
export type BatchItem = RedisCommand | AtomicCommands;

/** The outcome of one item of a batch: its reply (an array of replies for atomic items), or the error Redis answered. */
export interface BatchOutcome {
  error: Error | null;
  value: unknown;
}

export const command = (...cmd: RedisCommand): RedisCommand => cmd;

export const atomic = (...commands: RedisCommand[]): AtomicCommands => ({ atomic: commands });

export const COMMAND_BATCH_DEFAULTS = Object.freeze({
  /**
   * Commands per pipeline. A batch of any size goes out in pipelines of about this many commands,
   * so no single pipeline outlives its time limit however large the book (50,000 symbols are
   * 100,000 reads), and the client never holds a whole batch's replies at once.
   */
  chunkCommands: 2000,
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

/** What goes out as one unit: a plain command, or one MULTI/EXEC block of consecutive atomic items. */
type Unit = { kind: 'command'; index: number; cmd: RedisCommand } | { kind: 'block'; first: number; groups: (readonly RedisCommand[])[] };

const isAtomic = (item: BatchItem): item is AtomicCommands => !Array.isArray(item);

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
  const baseTimeoutMs = options.baseTimeoutMs ?? commandTimeoutOf(client);
  const units = toUnits(items, client.isCluster ? 0 : o.transactionCommands);
  const chunks = toChunks(units, o.chunkCommands);
  const outcomes: BatchOutcome[] = new Array(items.length);

  let next = 0;
  let inFlight = 0;
  let failure: Error | undefined;
  const lane = async (): Promise<void> => {
    while (next < chunks.length && !failure) {
      const chunk = chunks[next++]!;
      inFlight += chunk.commands;
      const timeoutMs = baseTimeoutMs === undefined ? undefined : baseTimeoutMs + inFlight * o.perCommandMs;
      try {
        const sent = client.isCluster ? sendOneByOne(client as Cluster, chunk.units, timeoutMs) : sendPipeline(client as Redis, chunk.units, timeoutMs);
        for (const [index, outcome] of await sent) {
          outcomes[index] = outcome;
          if (outcome.error && !isReplyError(outcome.error)) failure ??= outcome.error;
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

/** The client's own per-command time limit (`commandTimeout`), if it has one. */
function commandTimeoutOf(client: RedisClient): number | undefined {
  const options = client.isCluster ? (client as Cluster).options.redisOptions : (client as Redis).options;
  return options?.commandTimeout;
}

function toUnits(items: readonly BatchItem[], transactionCommands: number): Unit[] {
  const units: Unit[] = [];
  let block: Extract<Unit, { kind: 'block' }> | undefined;
  let blockCommands = 0;
  items.forEach((item, index) => {
    if (!isAtomic(item)) {
      units.push({ kind: 'command', index, cmd: item });
      block = undefined;
      return;
    }
    if (!block || blockCommands + item.atomic.length > transactionCommands) {
      block = { kind: 'block', first: index, groups: [] };
      blockCommands = 0;
      units.push(block);
    }
    block.groups.push(item.atomic);
    blockCommands += item.atomic.length;
  });
  return units;
}

const unitCommands = (unit: Unit): number =>
  unit.kind === 'command' ? 1 : unit.groups.reduce((n, g) => n + g.length, 2);

function toChunks(units: readonly Unit[], chunkCommands: number): { units: Unit[]; commands: number }[] {
  const chunks: { units: Unit[]; commands: number }[] = [];
  let current: { units: Unit[]; commands: number } | undefined;
  for (const unit of units) {
    const n = unitCommands(unit);
    if (!current || (current.commands > 0 && current.commands + n > chunkCommands)) {
      current = { units: [], commands: 0 };
      chunks.push(current);
    }
    current.units.push(unit);
    current.commands += n;
  }
  return chunks;
}

/** An ioredis command with its own time limit (ioredis applies the client's only to commands without one). */
function timed([name, ...args]: RedisCommand, timeoutMs: number | undefined, inTransaction = false): Command {
  const cmd = new Command(name, args, { replyEncoding: 'utf8' });
  if (timeoutMs !== undefined) cmd.setTimeout(timeoutMs);
  cmd.inTransaction = inTransaction;
  return cmd;
}

/** An error Redis itself answered, as opposed to one raised because no answer came. */
function isReplyError(error: Error): boolean {
  return error instanceof (ReplyError as ErrorConstructor);
}

type Indexed = [index: number, outcome: BatchOutcome][];

/** Queues one MULTI/EXEC block on `pipeline`; returns how to read its items' outcomes from the pipeline's replies. */
function queueBlock(
  pipeline: Pipeline,
  block: Extract<Unit, { kind: 'block' }>,
  timeoutMs: number | undefined,
): (replies: [Error | null, unknown][], at: number) => Indexed {
  pipeline.sendCommand(timed(['multi'], timeoutMs, true));
  for (const group of block.groups) for (const cmd of group) pipeline.sendCommand(timed(cmd, timeoutMs, true));
  pipeline.sendCommand(timed(['exec'], timeoutMs));
  return (replies, at) => {
    const out: Indexed = [];
    const queued = replies.slice(at + 1, at + 1 + block.groups.reduce((n, g) => n + g.length, 0));
    const [execError, execValue] = replies[at + 1 + queued.length] ?? [new Error('no reply'), undefined];
    // A command refused while queuing (OOM, NOPERM, a wrong argument count) says why the block was aborted.
    const blockError = execError ? (queued.find(([e]) => e)?.[0] ?? execError) : null;
    let offset = 0;
    block.groups.forEach((group, g) => {
      const values = blockError ? undefined : (execValue as unknown[]).slice(offset, offset + group.length);
      offset += group.length;
      const error = blockError ?? (values!.find((v): v is Error => v instanceof Error) ?? null);
      out.push([block.first + g, { error, value: error ? undefined : values }]);
    });
    return out;
  };
}

async function sendPipeline(client: Redis, units: readonly Unit[], timeoutMs: number | undefined): Promise<Indexed> {
  const pipeline = new Pipeline(client);
  const readers: { at: number; read: (replies: [Error | null, unknown][], at: number) => Indexed }[] = [];
  let at = 0;
  for (const unit of units) {
    if (unit.kind === 'command') {
      pipeline.sendCommand(timed(unit.cmd, timeoutMs));
      const index = unit.index;
      readers.push({ at, read: (replies, i) => [[index, outcomeOf(replies[i])]] });
    } else {
      readers.push({ at, read: queueBlock(pipeline, unit, timeoutMs) });
    }
    at += unitCommands(unit);
  }
  const replies = (await pipeline.exec()) as [Error | null, unknown][] | null;
  if (!replies) throw new Error('pipeline was discarded');
  return readers.flatMap(({ at: i, read }) => read(replies, i));
}

function outcomeOf(reply: [Error | null, unknown] | undefined): BatchOutcome {
  const [error, value] = reply ?? [new Error('no reply'), undefined];
  return { error: error ?? null, value };
}

async function sendOneByOne(client: Cluster, units: readonly Unit[], timeoutMs: number | undefined): Promise<Indexed> {
  const sent = units.map(async (unit): Promise<Indexed> => {
    if (unit.kind === 'command') {
      try {
        return [[unit.index, { error: null, value: await client.sendCommand(timed(unit.cmd, timeoutMs)) }]];
      } catch (error) {
        return [[unit.index, { error: error as Error, value: undefined }]];
      }
    }
    // One atomic item per block on a cluster: its commands share a key, hence a slot and a node.
    const pipeline = new Pipeline(client);
    const read = queueBlock(pipeline, unit, timeoutMs);
    const replies = (await pipeline.exec()) as [Error | null, unknown][] | null;
    if (!replies) throw new Error('pipeline was discarded');
    return read(replies, 0);
  });
  return (await Promise.all(sent)).flat();
}
