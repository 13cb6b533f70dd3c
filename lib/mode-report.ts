import type { Mode } from '../types/mode';
import type { WorkerHeartbeat } from '../types/worker-heartbeat';
import { parseModeOverride } from './worker/mode-switch';

/** What the running workers publish about their mode, as `p28-worker mode` reads it from Redis. */
export interface PublishedMode {
  /** The override key's raw value; null when unset. */
  override: string | null;
  /** The leader's heartbeat, when present and valid. */
  heartbeat: WorkerHeartbeat | undefined;
  /** How many budget hashes say each mode. */
  hashModes: { shadow: number; enforce: number };
  /** The fields of the latest entry of the mode audit stream. */
  lastAudit: Record<string, string> | undefined;
  /** P28_MODE of the environment the command runs in (after `--env`); undefined when unset. */
  localMode: Mode | undefined;
  overrideKey: string;
  nowMs: number;
}

const iso = (epochSec: unknown): string => (Number(epochSec) > 0 ? new Date(Number(epochSec) * 1000).toISOString() : String(epochSec));

/**
 * The effective mode of the running workers and where it comes from, from what they publish, never
 * from the environment of the command: a valid override wins (every worker applies it at its next
 * cycle); else the mode in the leader's heartbeat; else the mode the budget hashes say (enforce
 * when any says enforce, as a canary writes shadow for the rest); else the latest audit entry.
 * Returns the lines to print, the first one `mode: <mode> (source: ...)`.
 */
export function modeReport(p: PublishedMode): string[] {
  const lines: string[] = [];
  const override = p.override === null ? undefined : parseModeOverride(p.override);
  const beat = p.heartbeat;
  const hashes = p.hashModes.shadow + p.hashModes.enforce;
  const hashMode: Mode | undefined = hashes === 0 ? undefined : p.hashModes.enforce > 0 ? 'enforce' : 'shadow';
  const auditMode = p.lastAudit?.to === undefined ? undefined : parseModeOverride(p.lastAudit.to);
  const workersEnvMode = beat?.configured_mode ?? (beat?.mode_source === 'env' ? beat.mode : undefined);

  let workersMode: Mode | undefined;
  if (override) {
    workersMode = override;
    lines.push(`mode: ${override} (source: override, ${p.overrideKey})`);
  } else {
    workersMode = beat?.mode ?? hashMode ?? auditMode;
    const from = beat?.mode ? `the heartbeat of ${beat.leader}` : hashMode ? 'the budget hashes' : auditMode ? 'the mode audit stream' : undefined;
    if (workersMode && from) lines.push(`mode: ${workersMode} (source: env, the workers' P28_MODE; read from ${from})`);
    else lines.push(`mode: unknown (source: none; no worker has published a mode: no heartbeat, no budget hashes, no audit entry)`);
  }

  if (p.override === null) lines.push(`override: none (${p.overrideKey} is not set)`);
  else if (!override) lines.push(`override: ${JSON.stringify(p.override.slice(0, 64))} is invalid and ignored by the workers`);
  else lines.push(`override: ${override} (${p.overrideKey}); it lasts until cleared or until a worker process starts`);

  if (beat) {
    const ageSec = Math.max(0, Math.round((p.nowMs - beat.last_success_ts) / 1000));
    const said = beat.mode ? `, mode ${beat.mode} from ${beat.mode_source ?? 'env'}${beat.configured_mode ? `, P28_MODE=${beat.configured_mode}` : ''}` : '';
    lines.push(`heartbeat: leader ${beat.leader}, last cycle ${ageSec} s ago${said}`);
  } else {
    lines.push('heartbeat: none (no worker has completed a cycle, or its heartbeat expired)');
  }
  lines.push(hashes === 0 ? 'budget hashes: none' : `budget hashes: ${p.hashModes.enforce} say enforce, ${p.hashModes.shadow} say shadow`);
  if (override && hashMode && hashMode !== override && p.hashModes[override] < hashes) {
    lines.push(`(the override is applied at each worker's next cycle: hashes still saying ${override === 'enforce' ? 'shadow' : 'enforce'} are rewritten then)`);
  }

  const entry = p.lastAudit;
  if (entry) {
    if (entry.event === 'cleared_at_start') lines.push(`last change: override ${entry.from} cleared at start by ${entry.instance} at ${iso(entry.timestamp)}; mode -> ${entry.to} (env)`);
    else lines.push(`last switch: ${entry.from} -> ${entry.to} (${entry.source}) by ${entry.instance} at ${iso(entry.timestamp)}`);
  }

  if (p.localMode !== undefined) {
    if (workersEnvMode !== undefined && workersEnvMode !== p.localMode) {
      lines.push(`note: P28_MODE=${p.localMode} here differs from the workers' P28_MODE=${workersEnvMode}; this command reports what the workers publish, not this environment`);
    } else if (workersEnvMode === undefined && !override && workersMode !== undefined && workersMode !== p.localMode) {
      lines.push(`note: P28_MODE=${p.localMode} here differs from the mode the workers publish (${workersMode}); this command reports what the workers publish, not this environment`);
    }
  }
  return lines;
}
