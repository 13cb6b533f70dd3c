import { performance } from 'node:perf_hooks';
import { Command, Pipeline, type Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './client';
import { isReplyError } from './error-cause';
import { redisModeOf } from './redis-modes';

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

/** Consecutive atomic items sent as one MULTI/EXEC block; `commands` counts theirs, without MULTI and EXEC. */
interface Block {
  groups: (readonly RedisCommand[])[];
  commands: number;
}
/** What goes out as one unit: a plain command, or a block. Units cover the items in order, one outcome per item. */
type Unit = RedisCommand | Block;

const isBlock = (unit: Unit): unit is Block => !Array.isArray(unit);

/** Consecutive units sent as one pipeline; `first` is the index of the first item they cover. */
interface Chunk {
  units: Unit[];
  first: number;
  items: number;
  commands: number;
}

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

function toUnits(items: readonly BatchItem[], transactionCommands: number): Unit[] {
  const units: Unit[] = [];
  let block: Block | undefined;
  let blockCommands = 0;
  for (const item of items) {
    if (!isAtomic(item)) {
      units.push(item);
      block = undefined;
      continue;
    }
    if (!block || blockCommands + item.atomic.length > transactionCommands) {
      block = { groups: [], commands: 0 };
      blockCommands = 0;
      units.push(block);
    }
    block.groups.push(item.atomic);
    block.commands += item.atomic.length;
    blockCommands += item.atomic.length;
  }
  return units;
}

/** Commands a unit puts on the wire: MULTI and EXEC around a block's. */
const unitCommands = (unit: Unit): number => (isBlock(unit) ? unit.commands + 2 : 1);

function toChunks(units: readonly Unit[], chunkCommands: number): Chunk[] {
  const chunks: Chunk[] = [];
  let current: Chunk | undefined;
  let first = 0;
  for (const unit of units) {
    const n = unitCommands(unit);
    if (!current || (current.commands > 0 && current.commands + n > chunkCommands)) {
      current = { units: [], first, items: 0, commands: 0 };
      chunks.push(current);
    }
    const items = isBlock(unit) ? unit.groups.length : 1;
    current.units.push(unit);
    current.items += items;
    current.commands += n;
    first += items;
  }
  return chunks;
}

function toCommand(command: RedisCommand, inTransaction = false): Command {
  const cmd = new Command(command[0], command.slice(1), { replyEncoding: 'utf8' });
  cmd.inTransaction = inTransaction;
  return cmd;
}

type Reply = [Error | null, unknown];

/** Queues one MULTI/EXEC block on `pipeline`, its commands also on `sent`. */
function queueBlock(pipeline: Pipeline, block: Block, sent: Command[]): void {
  const queue = (cmd: Command) => {
    pipeline.sendCommand(cmd);
    sent.push(cmd);
  };
  queue(toCommand(['multi'], true));
  for (const group of block.groups) for (const cmd of group) queue(toCommand(cmd, true));
  queue(toCommand(['exec']));
}

/** The outcomes of a block's items, from item `first` on, from the pipeline's replies (the block's MULTI reply at `at`). */
function readBlock(block: Block, replies: readonly Reply[], at: number, outcomes: BatchOutcome[], first: number): void {
  const [execError, execValue] = replies[at + 1 + block.commands] ?? [new Error('no reply'), undefined];
  let blockError: Error | null = null;
  if (execError) {
    // A command refused while queuing (OOM, NOPERM, a wrong argument count) says why the block was aborted.
    blockError = execError;
    for (let i = at + 1; i <= at + block.commands; i++) {
      if (replies[i]?.[0]) {
        blockError = replies[i]![0];
        break;
      }
    }
  }
  let offset = 0;
  block.groups.forEach((group, g) => {
    let error = blockError;
    let value: unknown[] | undefined;
    if (!error) {
      value = (execValue as unknown[]).slice(offset, offset + group.length);
      error = (value.find((v) => v instanceof Error) as Error | undefined) ?? null;
    }
    offset += group.length;
    outcomes[first + g] = { error, value: error ? undefined : value };
  });
}

/**
 * One pipeline on one connection, with one timer for all of its commands rather than one each:
 * the client's own per-command timeout is suspended while the pipeline is written (synchronously,
 * inside `exec`), and the pipeline's timer rejects whatever is still unanswered when it fires, as
 * the per-command timers would have.
 */
async function sendPipeline(client: Redis, chunk: Chunk, timeoutMs: number | undefined, outcomes: BatchOutcome[]): Promise<void> {
  const pipeline = new Pipeline(client);
  const sent: Command[] = [];
  for (const unit of chunk.units) {
    if (isBlock(unit)) queueBlock(pipeline, unit, sent);
    else {
      const cmd = toCommand(unit);
      pipeline.sendCommand(cmd);
      sent.push(cmd);
    }
  }
  const saved = client.options.commandTimeout;
  client.options.commandTimeout = undefined;
  let exec: Promise<Reply[] | null>;
  try {
    exec = pipeline.exec() as Promise<Reply[] | null>;
  } finally {
    client.options.commandTimeout = saved;
  }
  const timer = timeoutMs === undefined ? undefined : stallAwareTimer(timeoutMs, () => {
    for (const cmd of sent) if (!cmd.isSettled) cmd.reject(new Error('Command timed out'));
  });
  let replies: Reply[] | null;
  try {
    replies = await exec;
  } finally {
    timer?.clear();
  }
  if (!replies) throw new Error('pipeline was discarded');
  let at = 0;
  let item = chunk.first;
  for (const unit of chunk.units) {
    if (isBlock(unit)) {
      readBlock(unit, replies, at, outcomes, item);
      item += unit.groups.length;
    } else {
      const [error, value] = replies[at] ?? [new Error('no reply'), undefined];
      outcomes[item++] = { error: error ?? null, value };
    }
    at += unitCommands(unit);
  }
}

/**
 * A time limit that does not blame Redis for this process's own pause. A timer that fires far
 * later than it was due (the process was stopped, a VM frozen, the event loop blocked) says
 * nothing about Redis: the replies may be waiting in the socket, unread. It is then armed once
 * more for `timeoutMs`, so that writes which landed are confirmed, never reported as failed.
 */
function stallAwareTimer(timeoutMs: number, onTimeout: () => void): { clear: () => void } {
  let timer: NodeJS.Timeout;
  let rearmed = false;
  const arm = (): void => {
    const due = performance.now() + timeoutMs;
    timer = setTimeout(() => {
      const lateMs = performance.now() - due;
      if (!rearmed && lateMs > STALL_MS) {
        rearmed = true;
        arm();
        return;
      }
      onTimeout();
    }, timeoutMs);
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}

/** A timer later than this (ms) beyond its due time means the process itself stalled. */
const STALL_MS = 1000;

/** Redis Cluster: each command, and each atomic item's block, on its own to its node; a timer each. */
async function sendOneByOne(client: Cluster, chunk: Chunk, timeoutMs: number | undefined, outcomes: BatchOutcome[]): Promise<void> {
  const timed = (cmd: Command) => {
    if (timeoutMs !== undefined) cmd.setTimeout(timeoutMs);
    return cmd;
  };
  // Each unit is one item here: blocks hold one atomic item each on a cluster.
  await Promise.all(
    chunk.units.map(async (unit, i) => {
      const index = chunk.first + i;
      if (!isBlock(unit)) {
        try {
          outcomes[index] = { error: null, value: await client.sendCommand(timed(toCommand(unit))) };
        } catch (error) {
          outcomes[index] = { error: error as Error, value: undefined };
        }
        return;
      }
      // One atomic item per block on a cluster: its commands share a key, hence a slot and a node.
      const pipeline = new Pipeline(client);
      const sent: Command[] = [];
      queueBlock(pipeline, unit, sent);
      sent.forEach(timed);
      const replies = (await pipeline.exec()) as Reply[] | null;
      if (!replies) throw new Error('pipeline was discarded');
      readBlock(unit, replies, 0, outcomes, index);
    }),
  );
}
