import { z } from 'zod';
import { numericString } from './wire-number';

/**
 * One entry of `quantum:stream:p28.cycles`: a worker cycle, as readiness reads it (was the shadow
 * phase stable, how often did inputs fall back). Written by the replica that ran the cycle: every
 * cycle of the leader, and failed cycles of any replica. Every field a string.
 */
export const CYCLE_HISTORY_FORMAT = '1';

export const CycleHistoryEntry = z.object({
  v: z.literal(CYCLE_HISTORY_FORMAT).describe('format version, `1`'),
  ts: numericString({ min: 0 }).describe('epoch ms at which the cycle started (the worker\'s clock)'),
  result: z.enum(['ok', 'skipped', 'failed', 'standby']).describe('how the cycle ended (`p28_cycles_total{result}`)'),
  duration_ms: numericString({ min: 0 }).describe('how long it took, in ms'),
  symbols: numericString({ min: 0 }).describe('symbols in the universe of the cycle (budgets computed)'),
  written: numericString({ min: 0 }).describe('budget hashes written'),
  leader: z.string().min(1).describe('P28_INSTANCE_ID of the replica that ran it'),
  role: z.enum(['leader', 'standby']).describe('its role in the cycle'),
  mode: z.enum(['shadow', 'enforce']).describe('the effective mode'),
  mode_source: z.enum(['env', 'override']).describe('where the mode came from'),
  portfolio: z.string().describe('portfolio state used: `fresh`, `lkg` or `none`'),
  stale: z.string().describe('inputs replaced by their fallback, as JSON `{input_type: count}` (`p28_stale_input_total`)'),
  cause: z.string().describe('short cause of a failed cycle (`NOPERM`, `TIMEOUT`, ...); empty otherwise'),
});
export type CycleHistoryEntry = z.input<typeof CycleHistoryEntry>;

/** A cycle as readiness reads it. */
export interface RecordedCycle {
  id: string;
  tsMs: number;
  result: string;
  durationMs: number;
  symbols: number;
  written: number;
  leader: string;
  role: string;
  mode: string;
  modeSource: string;
  portfolio: string;
  stale: Record<string, number>;
  cause: string;
}

/** An XRANGE entry as a `RecordedCycle`, or undefined when it is not one of this format. */
export function readRecordedCycle(id: string, flat: readonly string[]): RecordedCycle | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  if (f.v !== CYCLE_HISTORY_FORMAT) return undefined;
  const tsMs = Number(f.ts);
  if (!Number.isFinite(tsMs) || !f.result) return undefined;
  let stale: Record<string, number> = {};
  try {
    const parsed = JSON.parse(f.stale ?? '{}') as unknown;
    if (parsed && typeof parsed === 'object') {
      stale = Object.fromEntries(Object.entries(parsed).filter(([, n]) => typeof n === 'number' && Number.isFinite(n) && n >= 0)) as Record<string, number>;
    }
  } catch {
    stale = {};
  }
  return {
    id,
    tsMs,
    result: f.result,
    durationMs: Number(f.duration_ms) || 0,
    symbols: Number(f.symbols) || 0,
    written: Number(f.written) || 0,
    leader: f.leader ?? '',
    role: f.role ?? '',
    mode: f.mode ?? '',
    modeSource: f.mode_source ?? '',
    portfolio: f.portfolio ?? '',
    stale,
    cause: f.cause ?? '',
  };
}
