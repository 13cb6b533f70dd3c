import { performance } from 'node:perf_hooks';
import { Command, Pipeline, type Cluster, type Redis } from 'ioredis';
import { isBlock, unitCommands, type BatchOutcome, type Block, type Chunk, type RedisCommand } from './batch-plan';

/**
 * How one chunk of a batch goes out (`command-batch.ts` decides which and when): as one pipeline
 * on one connection, or, on Redis Cluster, command by command to each one's node.
 */

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
export async function sendPipeline(client: Redis, chunk: Chunk, timeoutMs: number | undefined, outcomes: BatchOutcome[]): Promise<void> {
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
export async function sendOneByOne(client: Cluster, chunk: Chunk, timeoutMs: number | undefined, outcomes: BatchOutcome[]): Promise<void> {
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
