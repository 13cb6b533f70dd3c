/**
 * How a batch is cut up before it is sent: its items (commands, or commands applied atomically)
 * into units (a command, or a MULTI/EXEC block of consecutive atomic items), and the units into
 * chunks (one pipeline each). Pure: `command-batch.ts` sends them.
 */

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

/** Consecutive atomic items sent as one MULTI/EXEC block; `commands` counts theirs, without MULTI and EXEC. */
export interface Block {
  groups: (readonly RedisCommand[])[];
  commands: number;
}
/** What goes out as one unit: a plain command, or a block. Units cover the items in order, one outcome per item. */
export type Unit = RedisCommand | Block;

export const isBlock = (unit: Unit): unit is Block => !Array.isArray(unit);

/** Consecutive units sent as one pipeline; `first` is the index of the first item they cover. */
export interface Chunk {
  units: Unit[];
  first: number;
  items: number;
  commands: number;
}

const isAtomic = (item: BatchItem): item is AtomicCommands => !Array.isArray(item);

export function toUnits(items: readonly BatchItem[], transactionCommands: number): Unit[] {
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
export const unitCommands = (unit: Unit): number => (isBlock(unit) ? unit.commands + 2 : 1);

export function toChunks(units: readonly Unit[], chunkCommands: number): Chunk[] {
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
