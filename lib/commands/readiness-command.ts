import type { WorkerConfig } from '../config';
import type { RedisClient } from '../redis/client';
import { RedisKeys } from '../redis/keys';
import { readinessContext } from '../readiness/context';
import { evaluateReadiness } from '../readiness/read-history';
import { renderLedger, renderReadiness } from '../readiness/render';
import { parseWindow } from '../readiness/window';

export interface ReadinessCommandOptions {
  window: string;
  json?: boolean;
  ledger?: boolean;
}

/**
 * Exit codes of `p28-worker readiness`: 0 every item passes, 4 at least one fails (1 and 2 as every
 * command; 3 is the worker's own "cannot listen").
 */
export const READINESS_EXIT = Object.freeze({ ready: 0, notReady: 4 });

/**
 * `p28-worker readiness`: the guide's pre-activation checklist judged from the window's records.
 * Prints the report (a table, then the details), or JSON, or an OPS ledger entry in markdown;
 * resolves to the exit code. Reads only. Throws `WindowError` for a bad `--window`.
 */
export async function readinessCommand(client: RedisClient, config: WorkerConfig, options: ReadinessCommandOptions, write: (text: string) => void, nowMs = Date.now()): Promise<number> {
  const windowMs = parseWindow(options.window);
  const report = await evaluateReadiness(client, new RedisKeys(config.keyPrefix), readinessContext(config, windowMs, nowMs));
  if (options.json) write(`${JSON.stringify(report, null, 2)}\n`);
  else if (options.ledger) write(renderLedger(report, { mode: config.mode, instance: config.instanceId }));
  else write(renderReadiness(report));
  return report.ready ? READINESS_EXIT.ready : READINESS_EXIT.notReady;
}
