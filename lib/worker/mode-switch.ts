import { MODES, type Mode } from '../../types/mode';
import type { RedisCommand } from '../redis/command-batch';
import { silentLogger, type Logger } from '../logger';

/** Where the effective mode came from: the run-time override key, or P28_MODE. */
export type ModeSource = 'override' | 'env';

/** The override key as read: its value, null when unset, or the error of reading it (e.g. WRONGTYPE). */
export type OverrideRead = string | null | Error;

/** The mode a cycle runs under, and what to record about it. */
export interface ModeDecision {
  mode: Mode;
  source: ModeSource;
  /** The raw override that was ignored because it is not `shadow` or `enforce`. */
  invalidOverride?: string;
  /** Set when the audit stream's latest entry does not end in `mode`: the entry to append. */
  audit?: ModeAuditEntry;
}

export interface ModeAuditEntry {
  from: Mode | 'none';
  to: Mode;
  source: ModeSource;
  instance: string;
  /** Epoch seconds. */
  timestamp: number;
}

export const MODE_SWITCH_DEFAULTS = Object.freeze({
  /** Approximate length cap of the mode audit stream (XADD MAXLEN ~). */
  auditMaxLen: 1000,
});

export interface ModeSwitchOptions {
  /** P28_MODE: the mode when no valid override is set. */
  configuredMode: Mode;
  /** P28_ENFORCE_SYMBOLS: when non-empty, only these symbols get `enforce` under an enforce mode. */
  enforceSymbols: readonly string[];
  /** Written into audit entries. */
  instanceId: string;
  logger?: Logger;
  /** Default `MODE_SWITCH_DEFAULTS.auditMaxLen`. */
  auditMaxLen?: number;
}

/** Reads an override value: `shadow` or `enforce`, any case, surrounding blanks ignored. */
export function parseModeOverride(raw: string): Mode | undefined {
  const value = raw.trim().toLowerCase();
  return (MODES as readonly string[]).includes(value) ? (value as Mode) : undefined;
}

/**
 * The run-time feature flag. The effective mode is the override key's value when it holds a valid
 * mode, else P28_MODE; an operator switches shadow <-> enforce by setting or deleting that key, and
 * the next cycle applies it, without a restart. This class decides the mode from what a cycle read,
 * logs changes (warn) and invalid overrides (warn when the bad value first appears), and says when
 * the audit stream needs an entry: whenever its latest entry does not end in the effective mode, so
 * restarts and replica hand-overs neither repeat nor lose a switch.
 */
export class ModeSwitch {
  private readonly logger: Logger;
  private readonly canary: ReadonlySet<string>;
  private readonly auditMaxLen: number;
  private current: Mode;
  private lastInvalid: string | undefined;

  constructor(private readonly options: ModeSwitchOptions) {
    this.logger = options.logger ?? silentLogger;
    this.canary = new Set(options.enforceSymbols);
    this.auditMaxLen = options.auditMaxLen ?? MODE_SWITCH_DEFAULTS.auditMaxLen;
    this.current = options.configuredMode;
  }

  /** The effective mode of the latest cycle (P28_MODE before the first). */
  get mode(): Mode {
    return this.current;
  }

  /**
   * Decides the effective mode from the override as read this cycle. `auditTail` is the `to` field
   * of the audit stream's latest entry (null when the stream is empty); leave it undefined when the
   * stream was not read (a stand-by), and no audit entry is proposed.
   */
  resolve(override: OverrideRead, nowMs: number, auditTail?: string | null): ModeDecision {
    let mode = this.options.configuredMode;
    let source: ModeSource = 'env';
    let invalidOverride: string | undefined;
    if (override instanceof Error) {
      invalidOverride = `unreadable: ${override.message}`;
    } else if (override !== null) {
      const parsed = parseModeOverride(override);
      if (parsed) {
        mode = parsed;
        source = 'override';
      } else {
        invalidOverride = override;
      }
    }

    if (invalidOverride !== undefined) {
      const log = invalidOverride === this.lastInvalid ? this.logger.debug.bind(this.logger) : this.logger.warn.bind(this.logger);
      log({ override: invalidOverride, mode }, `ignoring invalid mode override (expected shadow or enforce); using P28_MODE=${mode}`);
    }
    this.lastInvalid = invalidOverride;

    if (mode !== this.current) {
      this.logger.warn({ from: this.current, to: mode, source, instance: this.options.instanceId }, `mode changed from ${this.current} to ${mode}`);
      this.current = mode;
    }

    const decision: ModeDecision = { mode, source };
    if (invalidOverride !== undefined) decision.invalidOverride = invalidOverride;
    if (auditTail !== undefined && auditTail !== mode) {
      const from = auditTail !== null && parseModeOverride(auditTail) ? (auditTail.trim().toLowerCase() as Mode) : 'none';
      decision.audit = { from, to: mode, source, instance: this.options.instanceId, timestamp: Math.floor(nowMs / 1000) };
    }
    return decision;
  }

  /**
   * The mode written into one symbol's hash: the effective mode, except that under `enforce` with a
   * canary list only the listed symbols are enforced and the rest stay in shadow.
   */
  symbolMode(symbol: string, effective: Mode): Mode {
    if (effective === 'enforce' && this.canary.size > 0 && !this.canary.has(symbol)) return 'shadow';
    return effective;
  }

  /**
   * XADD of the audit entry of a starting worker that deleted the override `removed`: event
   * `cleared_at_start`, `from` the mode the override had (or `none` when it held no valid mode),
   * `to` P28_MODE.
   */
  clearedAtStartCommand(stream: string, removed: string, nowMs: number): RedisCommand {
    return [
      'xadd', stream, 'MAXLEN', '~', this.auditMaxLen, '*',
      'event', 'cleared_at_start',
      'from', parseModeOverride(removed) ?? 'none',
      'to', this.options.configuredMode,
      'source', 'env',
      'instance', this.options.instanceId,
      'timestamp', Math.floor(nowMs / 1000),
      'override', removed.slice(0, 64),
    ];
  }

  /** XADD of an audit entry to `stream`, length-capped. */
  auditCommand(stream: string, entry: ModeAuditEntry): RedisCommand {
    return [
      'xadd', stream, 'MAXLEN', '~', this.auditMaxLen, '*',
      'from', entry.from,
      'to', entry.to,
      'source', entry.source,
      'instance', entry.instance,
      'timestamp', entry.timestamp,
    ];
  }
}
