import { BudgetHash, encodeBudgetHash, readBudgetHash } from '../../types/budget-hash';
import { encodeViolationEvent } from '../../types/violation-event';
import type { BudgetWrite } from '../engine/budget-record';
import { formatIssues } from '../../types/wire-number';
import { atomic, command, execBatch, type BatchItem, type BatchOptions, type BatchOutcome, type RedisCommand } from '../redis/command-batch';
import type { RedisKeys } from '../redis/keys';
import type { RedisClient } from '../redis/client';
import { forEachInSlices } from './event-loop-slices';
import { FENCED_WRITE, execFencedBatch, fencedWriteCommand, type Fence } from '../redis/fenced-write';

export interface WriteFailure {
  /** The symbol, or the stream, whose write failed. */
  target: string;
  error: string;
}

export interface WriteResult {
  /** Symbols whose budget hash was written with its TTL. */
  written: string[];
  /** Violations appended to the stream, by symbol. */
  published: string[];
  /** Writes Redis refused or records that failed validation; the next cycle writes everything again. */
  failures: WriteFailure[];
  /**
   * Symbols whose hash was not written because a newer leader's tenure holds the lease (fencing);
   * when there are any, the violations and extra commands of the write are not sent either.
   */
  fenced: string[];
}

export interface BudgetWriterOptions {
  client: RedisClient;
  keys: RedisKeys;
  /** BUDGET_HASH_TTL_SEC. */
  ttlSec: number;
  /** VIOLATION_STREAM_MAXLEN: approximate cap (XADD MAXLEN ~). */
  violationStreamMaxLen: number;
  /**
   * The leader lease's term (`LeaderLease.term`). What the writer knows of the hashes' fields holds
   * only while no other replica writes them, so it is dropped whenever the term changes.
   */
  leaseTerm?: () => number;
  /** Pipeline sizes and time limits, see `COMMAND_BATCH_DEFAULTS`. */
  batch?: BatchOptions;
  /**
   * The leader's fencing token (`LeaderLease.fence`). When it gives one, each hash is written by
   * `fenced-write-1.lua`, applied in Redis only while the tenure is the newest.
   */
  fence?: () => Fence | undefined;
}

export const BUDGET_WRITER_DEFAULTS = Object.freeze({
  /**
   * Every this many writes, the writer forgets what it knows of the hashes' fields and deletes every
   * clearable field a record lacks. A write it could not know of (a replica that stalled past its
   * lease and wrote late) can then leave a stale field behind for about one hash TTL at most.
   */
  fullClearEveryWrites: 12,
});

/**
 * `last_violation_ts` survives cycles without a violation, so the gate can see a recent one in the
 * same single read; every other optional field is removed when it no longer applies.
 */
const PERSISTENT_FIELDS = new Set(['last_violation_ts']);
const CLEARED_OPTIONAL_FIELDS: readonly string[] = Object.entries(BudgetHash.shape)
  .filter(([name, schema]) => !PERSISTENT_FIELDS.has(name) && schema.safeParse(undefined).success)
  .map(([name]) => name);
const NONE: readonly string[] = Object.freeze([]);

/**
 * Writes a cycle's budgets in one batch (`execBatch`: pipelines of MULTI/EXEC blocks on standalone
 * Redis). Each hash is written atomically with its TTL: `HSET` of every field and `EXPIRE` in the
 * same transaction, so a reader never sees a hash without its TTL or half of an update; when an
 * optional field the record lacks may be in the hash (`position_price` of a position gone flat), an
 * `HDEL` of it joins the same transaction. Plain commands in a transaction cost Redis a fraction of
 * a Lua script call per hash, and a block of about a hundred hashes holds Redis well under a
 * millisecond.
 *
 * Which fields a hash holds is known, not guessed: the writer remembers the clearable fields of its
 * last confirmed write of each symbol, and deletes every clearable field a record lacks whenever it
 * does not know (first write, a failed or unconfirmed write, a new lease term, and every
 * `fullClearEveryWrites` writes). Violations are appended to the stream in the same batch, after the
 * hashes. Every
 * record is encoded and checked against `BudgetHash` (the schema the gate reads with) first; one
 * that fails is not written but reported, which cannot happen unless the computation is broken.
 */
export class BudgetWriter {
  /** Clearable optional fields each symbol's hash held after this writer's last confirmed write of it. */
  private written = new Map<string, readonly string[]>();
  private term: number | undefined;
  private writesSinceFullClear = 0;

  constructor(private readonly options: BudgetWriterOptions) {}

  /**
   * Writes `writes` and the `extra` commands (the mode audit entry) together.
   * Rejects only when the batch could not be sent at all.
   */
  async write(writes: readonly BudgetWrite[], extra: readonly RedisCommand[] = []): Promise<WriteResult> {
    const result: WriteResult = { written: [], published: [], failures: [], fenced: [] };
    const known = this.knownFields();
    const fence = this.options.fence?.();
    // Unknown until confirmed: a batch that rejects leaves the writer knowing nothing.
    this.written = new Map();
    const items: BatchItem[] = [];
    const targets: { kind: 'hash' | 'violation' | 'extra'; target: string; clearable?: readonly string[] }[] = [];
    // Violations after every hash: a command between two hashes would end their shared MULTI/EXEC block.
    const violations: { cmd: RedisCommand; symbol: string }[] = [];

    // In slices: encoding and checking 20,000 records must not hold the loop that serves decisions.
    await forEachInSlices(writes, (write) => {
      const fields = this.validFields(write.record, result);
      if (!fields) return;
      const symbol = write.record.symbol;
      items.push(this.hashWrite(symbol, fields, known.get(symbol), fence));
      targets.push({ kind: 'hash', target: symbol, clearable: clearableIn(fields) });
      if (write.violation) {
        let entry: string[];
        try {
          entry = encodeViolationEvent(write.violation);
        } catch (error) {
          result.failures.push({ target: symbol, error: `violation event rejected: ${(error as Error).message}` });
          return;
        }
        violations.push({ cmd: command('xadd', this.options.keys.violationStream, 'MAXLEN', '~', this.options.violationStreamMaxLen, '*', ...entry), symbol });
      }
    });
    const appended: BatchItem[] = [];
    const appendedTargets: typeof targets = [];
    for (const { cmd, symbol } of violations) {
      appended.push(cmd);
      appendedTargets.push({ kind: 'violation', target: symbol });
    }
    for (const cmd of extra) {
      appended.push(cmd);
      appendedTargets.push({ kind: 'extra', target: String(cmd[1]) });
    }

    if (!fence) {
      this.record(await execBatch(this.options.client, [...items, ...appended], this.options.batch), [...targets, ...appendedTargets], result);
      return result;
    }
    // Fenced: the hashes first; the stream entries only when no hash was refused, so a leader that
    // lost its tenure appends no violation or audit entry either (a fresh check, not an atomic one).
    this.record(await execFencedBatch(this.options.client, items, this.options.batch), targets, result);
    if (result.fenced.length === 0 && appended.length > 0) this.record(await execBatch(this.options.client, appended, this.options.batch), appendedTargets, result);
    return result;
  }

  private record(outcomes: readonly BatchOutcome[], targets: readonly { kind: 'hash' | 'violation' | 'extra'; target: string; clearable?: readonly string[] }[], result: WriteResult): void {
    outcomes.forEach((outcome, i) => {
      const { kind, target, clearable } = targets[i]!;
      if (outcome.error) result.failures.push({ target: kind === 'violation' ? `${this.options.keys.violationStream} (${target})` : target, error: outcome.error.message });
      else if (kind === 'hash') {
        if (typeof outcome.value === 'number' && outcome.value !== FENCED_WRITE.written) {
          result.fenced.push(target);
          return;
        }
        result.written.push(target);
        this.written.set(target, clearable!);
      } else if (kind === 'violation') result.published.push(target);
    });
  }

  /** What the writer may rely on for this write; empty when it must delete every clearable field a record lacks. */
  private knownFields(): ReadonlyMap<string, readonly string[]> {
    const term = this.options.leaseTerm?.();
    this.writesSinceFullClear += 1;
    if (term !== this.term || this.writesSinceFullClear >= BUDGET_WRITER_DEFAULTS.fullClearEveryWrites) {
      this.term = term;
      this.writesSinceFullClear = 0;
      return new Map();
    }
    return this.written;
  }

  private validFields(record: BudgetHash, result: WriteResult): Record<string, string> | undefined {
    let fields: Record<string, string>;
    try {
      fields = encodeBudgetHash(record);
    } catch (error) {
      result.failures.push({ target: record.symbol, error: `budget hash rejected: ${(error as Error).message}` });
      return undefined;
    }
    if (readBudgetHash(fields) !== undefined) return fields;
    // Only a record that fails pays for the schema's issue list.
    const check = BudgetHash.safeParse(fields);
    const issues = check.success ? ['does not read back'] : formatIssues(check.error);
    result.failures.push({ target: record.symbol, error: `budget hash rejected: ${issues.join('; ')}` });
    return undefined;
  }

  /** HSET and EXPIRE, preceded by HDEL of the clearable fields the hash may hold and the record lacks. */
  private hashWrite(symbol: string, fields: Record<string, string>, held: readonly string[] | undefined, fence: Fence | undefined): BatchItem {
    const key = this.options.keys.budget(symbol);
    if (fence) return fencedWriteCommand(this.options.client, fence, key, this.options.ttlSec, missingFrom(fields, held ?? CLEARED_OPTIONAL_FIELDS), fields);
    const hset: [string, ...string[]] = ['hset', key];
    for (const name in fields) hset.push(name, fields[name]!);
    const expire = command('expire', key, this.options.ttlSec);
    const stale = missingFrom(fields, held ?? CLEARED_OPTIONAL_FIELDS);
    return stale.length > 0 ? atomic(command('hdel', key, ...stale), hset, expire) : atomic(hset, expire);
  }
}

/** The names of `names` that `fields` lacks; NONE (no allocation) when it has them all. */
function missingFrom(fields: Record<string, string>, names: readonly string[]): readonly string[] {
  let missing: string[] | undefined;
  for (const name of names) if (!(name in fields)) (missing ??= []).push(name);
  return missing ?? NONE;
}

/** The clearable fields `fields` holds, as one shared array per combination (records mostly repeat a few). */
const clearableSets = new Map<string, readonly string[]>();
function clearableIn(fields: Record<string, string>): readonly string[] {
  let key = '';
  for (const name of CLEARED_OPTIONAL_FIELDS) key += name in fields ? '1' : '0';
  let set = clearableSets.get(key);
  if (!set) {
    set = Object.freeze(CLEARED_OPTIONAL_FIELDS.filter((name) => name in fields));
    clearableSets.set(key, set);
  }
  return set;
}
