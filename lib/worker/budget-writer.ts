import { BudgetHash, encodeBudgetHash, readBudgetHash } from '../../types/budget-hash';
import { encodeViolationEvent } from '../../types/violation-event';
import type { BudgetWrite } from '../engine/budget-record';
import { formatIssues } from '../../types/wire-number';
import { command, execBatch, type RedisCommand } from '../redis/command-batch';
import { withScripts } from '../redis/lua-scripts';
import type { RedisKeys } from '../redis/keys';
import type { RedisClient } from '../redis/client';

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
}

export interface BudgetWriterOptions {
  client: RedisClient;
  keys: RedisKeys;
  /** BUDGET_HASH_TTL_SEC. */
  ttlSec: number;
  /** VIOLATION_STREAM_MAXLEN: approximate cap (XADD MAXLEN ~). */
  violationStreamMaxLen: number;
}

/**
 * `last_violation_ts` survives cycles without a violation, so the gate can see a recent one in the
 * same single read; every other optional field is removed when it no longer applies.
 */
const PERSISTENT_FIELDS = new Set(['last_violation_ts']);
const CLEARED_OPTIONAL_FIELDS = Object.entries(BudgetHash.shape)
  .filter(([name, schema]) => !PERSISTENT_FIELDS.has(name) && schema.safeParse(undefined).success)
  .map(([name]) => name);

/**
 * Writes a cycle's budgets in one batch (`execBatch`: one pipeline on standalone Redis). Each hash is
 * one call of `lua/write-budget-1.lua`: HDEL of optional fields that no longer apply, HSET of every
 * field and EXPIRE, atomically, so a reader never sees a hash without its TTL or half of an update. Violations are appended to the
 * stream in the same batch. Every record is encoded and checked against `BudgetHash` (the schema the
 * gate reads with) first; one that fails is not written but reported, which cannot happen unless the
 * computation is broken.
 */
export class BudgetWriter {
  constructor(private readonly options: BudgetWriterOptions) {
    withScripts(options.client);
  }

  /**
   * Writes `writes` and the `extra` commands (the mode audit entry) together.
   * Rejects only when the batch could not be sent at all.
   */
  async write(writes: readonly BudgetWrite[], extra: readonly RedisCommand[] = []): Promise<WriteResult> {
    const result: WriteResult = { written: [], published: [], failures: [] };
    const items: RedisCommand[] = [];
    const targets: { kind: 'hash' | 'violation' | 'extra'; target: string }[] = [];

    for (const write of writes) {
      const fields = this.validFields(write.record, result);
      if (!fields) continue;
      items.push(this.hashCommand(write.record.symbol, fields));
      targets.push({ kind: 'hash', target: write.record.symbol });
      if (write.violation) {
        let entry: string[];
        try {
          entry = encodeViolationEvent(write.violation);
        } catch (error) {
          result.failures.push({ target: write.record.symbol, error: `violation event rejected: ${(error as Error).message}` });
          continue;
        }
        items.push(command('xadd', this.options.keys.violationStream, 'MAXLEN', '~', this.options.violationStreamMaxLen, '*', ...entry));
        targets.push({ kind: 'violation', target: write.record.symbol });
      }
    }
    for (const cmd of extra) {
      items.push(cmd);
      targets.push({ kind: 'extra', target: String(cmd[1]) });
    }

    const outcomes = await execBatch(this.options.client, items);
    outcomes.forEach((outcome, i) => {
      const { kind, target } = targets[i]!;
      if (outcome.error) result.failures.push({ target: kind === 'violation' ? `${this.options.keys.violationStream} (${target})` : target, error: outcome.error.message });
      else if (kind === 'hash') result.written.push(target);
      else if (kind === 'violation') result.published.push(target);
    });
    return result;
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

  private hashCommand(symbol: string, fields: Record<string, string>): RedisCommand {
    const stale = CLEARED_OPTIONAL_FIELDS.filter((name) => !(name in fields));
    const args: string[] = [];
    for (const name in fields) args.push(name, fields[name]!);
    return ['p28WriteBudget', this.options.keys.budget(symbol), this.options.ttlSec, stale.length, ...stale, ...args];
  }
}
