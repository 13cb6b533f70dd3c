import { z } from 'zod';
import { integerString, numericString } from './wire-number';
import { MODES } from './mode';

/**
 * `quantum:p28:worker:heartbeat`: written by the leader after every successful cycle, read by every
 * replica, so that each one can tell (in /health and `p28_budgets_written_timestamp_seconds`) when
 * budgets were last written, whichever replica wrote them.
 */
export const WorkerHeartbeat = z.object({
  /** Epoch ms at which the cycle that wrote the budgets ended. */
  last_success_ts: integerString({ min: 0 }),
  /** P28_INSTANCE_ID of the leader that wrote them. */
  leader: z.string().min(1),
  symbols_written: integerString({ min: 0 }),
  cycle_ms: numericString({ min: 0 }),
  /** The leader's effective mode in that cycle, where it came from, and its P28_MODE (absent in heartbeats of older workers). */
  mode: z.enum(MODES).optional(),
  mode_source: z.enum(['env', 'override']).optional(),
  configured_mode: z.enum(MODES).optional(),
});
export type WorkerHeartbeat = z.output<typeof WorkerHeartbeat>;

/** The heartbeat as HSET fields. */
export function encodeWorkerHeartbeat(beat: WorkerHeartbeat): Record<string, string> {
  return {
    last_success_ts: String(Math.round(beat.last_success_ts)),
    leader: beat.leader,
    symbols_written: String(beat.symbols_written),
    cycle_ms: String(Math.round(beat.cycle_ms * 10) / 10),
    ...(beat.mode === undefined ? {} : { mode: beat.mode }),
    ...(beat.mode_source === undefined ? {} : { mode_source: beat.mode_source }),
    ...(beat.configured_mode === undefined ? {} : { configured_mode: beat.configured_mode }),
  };
}
