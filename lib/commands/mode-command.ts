import type { Mode } from '../../types/mode';
import { WorkerHeartbeat } from '../../types/worker-heartbeat';
import { modeReport } from '../mode-report';
import { BUDGET_LISTING_DEFAULTS, listBudgetPage } from '../redis/budget-listing';
import type { RedisClient } from '../redis/client';
import { RedisKeys } from '../redis/keys';
import { parseModeOverride } from '../worker/mode-switch';
import { EXIT } from './exit-codes';
import { withRedis } from './with-redis';

/** How many budget hashes say each mode, read a page at a time so memory stays bounded. */
async function countHashModes(client: RedisClient, keys: RedisKeys): Promise<{ shadow: number; enforce: number }> {
  const counts = { shadow: 0, enforce: 0 };
  let cursor: string | undefined;
  do {
    const page = await listBudgetPage(client, keys, { cursor, limit: BUDGET_LISTING_DEFAULTS.maxLimit });
    for (const { fields } of page.budgets) if (fields.mode === 'shadow' || fields.mode === 'enforce') counts[fields.mode] += 1;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return counts;
}

/** `p28-worker mode`: shows, sets or clears the run-time mode override; the only operator command that writes. */
export async function modeCommand(mode: Mode | undefined, options: { clear?: boolean }): Promise<void> {
  if (mode && options.clear) {
    process.stderr.write('give a mode or --clear, not both\n');
    process.exitCode = EXIT.config;
    return;
  }
  await withRedis(async (client, config) => {
    const keys = new RedisKeys(config.keyPrefix);
    if (mode) {
      await client.set(keys.modeOverride, mode);
      process.stdout.write(
        `override set: ${keys.modeOverride} = ${mode}; every worker applies it within one cycle (${config.computeIntervalSec} s).\n` +
          'It lasts until it is cleared (p28-worker mode --clear) or until a worker process starts: a starting worker clears it and runs on its P28_MODE.\n',
      );
      return;
    }
    if (options.clear) {
      await client.del(keys.modeOverride);
      process.stdout.write(`override cleared: the mode follows P28_MODE of each worker from its next cycle (here P28_MODE=${config.mode})\n`);
      return;
    }
    const [override, heartbeat, tail, listed] = await Promise.all([
      client.get(keys.modeOverride),
      client.hgetall(keys.workerHeartbeat),
      client.xrevrange(keys.modeAuditStream, '+', '-', 'COUNT', 1),
      countHashModes(client, keys),
    ]);
    const hashModes = listed;
    const entry = tail[0];
    const lastAudit = entry ? Object.fromEntries(entry[1].flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1] ?? '']] : []))) : undefined;
    const report = modeReport({
      override,
      heartbeat: WorkerHeartbeat.safeParse(heartbeat).data,
      hashModes,
      lastAudit,
      localMode: process.env.P28_MODE === undefined ? undefined : parseModeOverride(process.env.P28_MODE),
      overrideKey: keys.modeOverride,
      nowMs: Date.now(),
    });
    process.stdout.write(report.join('\n') + '\n');
  });
}
