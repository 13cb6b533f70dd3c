import type { WorkerConfig } from '../../config';
import type { Logger } from '../../logger';
import type { RedisClient } from '../../redis/client';
import { execBatch } from '../../redis/command-batch';
import type { RedisKeys } from '../../redis/keys';
import type { KeyProblems } from '../key-problems';
import type { ModeSwitch } from '../mode-switch';
import { RedisStepError, redisStep } from './redis-step';

export interface StartOverrideOptions {
  config: Pick<WorkerConfig, 'mode'>;
  client: RedisClient;
  keys: RedisKeys;
  modeSwitch: ModeSwitch;
  keyProblems: KeyProblems;
  logger: Logger;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * One truth for the mode: a starting worker deletes the run-time override, so that P28_MODE in
 * the env file is what a restart brings back (the guide's rollback), and audits what it removed.
 * Retried every cycle until Redis has answered once.
 */
export class StartOverride {
  private cleared = false;

  constructor(private readonly options: StartOverrideOptions) {}

  /** Clears the override unless a cycle of this process already did; rejects with a `RedisStepError`. */
  async clearOnce(nowMs: number): Promise<void> {
    if (this.cleared) return;
    const { config, client, keys, modeSwitch, keyProblems, logger } = this.options;
    let removed: string | null;
    try {
      removed = await redisStep('clear mode override', () => client.getdel(keys.modeOverride));
    } catch (error) {
      if (!(error instanceof RedisStepError) || !messageOf(error.cause).startsWith('WRONGTYPE')) throw error;
      // An override key that is not a string is no override: P28_MODE applies, and the key is named.
      keyProblems.note({ kind: 'mode_override', problem: 'wrong_type', key: keys.modeOverride });
      removed = null;
    }
    this.cleared = true;
    if (removed === null) return;
    const entry = modeSwitch.clearedAtStartCommand(keys.modeAuditStream, removed, nowMs);
    await redisStep('audit cleared mode override', () => execBatch(client, [entry]));
    logger.warn({ override: removed, mode: config.mode }, `run-time mode override ${JSON.stringify(removed)} cleared at start; mode = P28_MODE = ${config.mode}`);
  }
}
