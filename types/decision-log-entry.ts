import { z } from 'zod';
import { numericString } from './wire-number';

/**
 * One entry of `quantum:stream:p28.decisions`: a gate's decision, the plan it judged and the inputs
 * it used, so that readiness can check it and a replay can recompute it. Every gate writes the same
 * entry (the Node plugin, the worker's HTTP API, the Python gate): one stream field, `d`, whose
 * value is every field below in this order, each a string, joined by `|` (an input that does not
 * apply is the empty string; a `|` inside a text value is written as `/`). One packed value keeps
 * an entry small in Redis (about 250 bytes) and cheap to write and to read back a million times;
 * `DecisionLogEntry` names the values.
 */
export const DECISION_LOG_STREAM_FIELD = 'd';
export const DECISION_LOG_SEPARATOR = '|';
export const DECISION_LOG_FORMAT = '1';

/** The ways into a gate: the in-process Node plugin, the worker's HTTP API, the Python gate. */
export const DECISION_LOG_VIAS = ['node', 'http', 'python'] as const;
export type DecisionLogVia = (typeof DECISION_LOG_VIAS)[number];

const empty = z.literal('');
const flag = z.enum(['0', '1']);
const optionalFlag = z.enum(['', '0', '1']);
const text = (max: number) => z.string().max(max);
const optionalNumber = (bounds: Parameters<typeof numericString>[0] = {}) => z.union([empty, numericString(bounds)]);

/**
 * The values of an entry by name, in the order gates write them. The `describe` text of each field
 * is what docs/decision-log.md shows (a test holds the two together).
 */
export const DecisionLogEntry = z.object({
  v: z.literal(DECISION_LOG_FORMAT).describe('format version, `1`'),
  ts: numericString({ min: 0 }).describe('epoch ms of the decision, from the gate\'s clock (the time a replay judges at)'),
  plan_id: text(200).describe('`planId` of the request (cut to 200 characters)'),
  symbol: text(40).describe('`symbol` of the request'),
  action: text(64).describe('`action` of the request'),
  side: z.enum(['', 'BUY', 'SELL']).describe('`side` of the request'),
  qty: optionalNumber({ min: 0 }).describe('`qty` of the request (base units)'),
  notional_usd: optionalNumber({ min: 0 }).describe('`notionalUsd` of the request'),
  reduce_only: optionalFlag.describe('`reduceOnly` of the request: `1`, `0`, or empty when not given'),
  reason: z.string().min(1).describe('the decision\'s reason (the closed set of the gate)'),
  detail: text(200).describe('the decision\'s detail, if any'),
  allow: flag.describe('`1` when the plan was allowed'),
  would_block: flag.describe('`1` when the plan breaks its budget (blocked under enforce, allowed under shadow)'),
  fail_open: flag.describe('`1` when the gate could not judge and let the plan through'),
  enforced: flag.describe('`1` when the decision was taken under `mode=enforce`'),
  mode: z.enum(['', 'shadow', 'enforce']).describe('the mode the decision was taken under; empty when no hash was read'),
  source: z.enum(['redis', 'cache', 'none']).describe('where the budget hash came from'),
  gate: z.string().min(1).max(200).describe('the gate instance that decided (option `instanceId`, default host-pid)'),
  via: z.enum(DECISION_LOG_VIAS).describe('the way in: `node` (plugin), `http` (`POST /v1/decisions`) or `python`'),
  budget_usd: optionalNumber({ min: 0 }).describe('`budget_usd` of the hash'),
  position_notional_usd: optionalNumber({ min: 0 }).describe('`position_notional_usd` of the hash'),
  projected_notional_usd: optionalNumber({ min: 0 }).describe('position notional once the plan is filled, as the gate projected it'),
  reserved_usd: optionalNumber({ min: 0 }).describe('headroom held by plans in flight when the decision was taken'),
  equity_usd: optionalNumber({ min: 0 }).describe('`equity_usd` of the hash (engine input)'),
  portfolio_heat: optionalNumber({ min: 0, max: 1 }).describe('`portfolio_heat` of the hash (engine input)'),
  cluster_stress: optionalNumber({ min: 0, max: 1 }).describe('`cluster_stress` of the hash (engine input)'),
  vol_regime: optionalNumber({ min: 0, max: 1 }).describe('`vol_regime` of the hash (engine input)'),
  base_risk_pct: optionalNumber({ min: 0, max: 1 }).describe('`base_risk_pct` of the hash (engine input)'),
  stress_factor: optionalNumber({ min: 0, max: 1 }).describe('`stress_factor` of the hash'),
  hash_mode: z.enum(['', 'shadow', 'enforce']).describe('`mode` of the hash as written by the worker'),
  hash_ts: optionalNumber({ min: 0 }).describe('`timestamp` of the hash (epoch s); empty when no hash was read'),
  position_amt: optionalNumber().describe('`position_amt` of the hash (signed)'),
  position_price: optionalNumber({ min: 0 }).describe('`position_price` of the hash'),
  position_status: text(16).describe('`position_status` of the hash'),
  last_violation_ts: optionalNumber({ min: 0 }).describe('`last_violation_ts` of the hash (epoch s)'),
  stale_after_ms: numericString({ min: 0 }).describe('the gate\'s `staleAfterMs`'),
  violation_window_ms: numericString({ min: 0 }).describe('the gate\'s `violationWindowMs`'),
  max_clock_skew_ms: numericString({ min: 0 }).describe('the gate\'s `maxClockSkewMs`'),
  force_shadow: flag.describe('`1` while the gate\'s emergency switch `forceShadow` was on'),
});
export type DecisionLogEntry = z.input<typeof DecisionLogEntry>;

/** Every field of an entry, in the order gates write them. */
export const DECISION_LOG_FIELDS: readonly (keyof DecisionLogEntry)[] = Object.freeze(Object.keys(DecisionLogEntry.shape) as (keyof DecisionLogEntry)[]);

/** The budget hash fields an entry carries under the same name. */
const HASH_FIELDS_KEPT = [
  'budget_usd',
  'position_notional_usd',
  'equity_usd',
  'portfolio_heat',
  'cluster_stress',
  'vol_regime',
  'base_risk_pct',
  'stress_factor',
  'position_amt',
  'position_price',
  'position_status',
  'last_violation_ts',
] as const;

/** A logged decision as readiness and replay read it: numbers as numbers, absent inputs undefined. */
export interface LoggedDecision {
  /** The stream entry id. */
  id: string;
  tsMs: number;
  planId: string;
  symbol: string;
  action: string;
  side?: 'BUY' | 'SELL';
  qty?: number;
  notionalUsd?: number;
  reduceOnly?: boolean;
  reason: string;
  detail?: string;
  allow: boolean;
  wouldBlock: boolean;
  failOpen: boolean;
  enforced: boolean;
  mode: 'shadow' | 'enforce' | null;
  source: string;
  gate: string;
  via: string;
  budgetUsd?: number;
  positionNotionalUsd?: number;
  projectedNotionalUsd?: number;
  reservedUsd?: number;
  /**
   * The budget hash the decision was judged on, rebuilt under its own field names (every value a
   * string, as stored), or undefined when no hash was read.
   */
  readonly hash?: Record<string, string>;
  /** When set, equal for two decisions exactly when they read the same hash (a cache key). */
  readonly hashKey?: string;
  policy: { staleAfterMs: number; violationWindowMs: number; maxClockSkewMs: number; forceShadow: boolean };
}

const num = (raw: string | undefined): number | undefined => {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
};

const INDEX = Object.fromEntries(DECISION_LOG_FIELDS.map((name, i) => [name, i])) as Record<keyof DecisionLogEntry, number>;
const HASH_INDEX = HASH_FIELDS_KEPT.map((name) => [name, INDEX[name]] as const);

/** A text value as written: `|` would split the entry, so it becomes `/`. */
export function decisionLogText(value: string): string {
  return value.includes(DECISION_LOG_SEPARATOR) ? value.replaceAll(DECISION_LOG_SEPARATOR, '/') : value;
}

/** The packed value of an entry from its values in `DECISION_LOG_FIELDS` order (texts already passed through `decisionLogText`). */
export function packDecisionLogValues(values: readonly string[]): string {
  return values.join(DECISION_LOG_SEPARATOR);
}

/** The values of a packed entry by name, or undefined when it is not of this format. */
export function unpackDecisionLogEntry(packed: string): Record<string, string> | undefined {
  const values = packed.split(DECISION_LOG_SEPARATOR);
  if (values.length !== DECISION_LOG_FIELDS.length || values[0] !== DECISION_LOG_FORMAT) return undefined;
  return Object.fromEntries(DECISION_LOG_FIELDS.map((name, i) => [name, values[i]!]));
}

/** Where the hash values of an entry begin and end in `DECISION_LOG_FIELDS` (equity_usd to last_violation_ts). */
const HASH_SPAN = [INDEX.equity_usd, INDEX.last_violation_ts] as const;

/**
 * A logged decision read from its packed value: every value is read once into a fixed-shape
 * object, and the hash it used is rebuilt only when asked for (`hash`), so a million of them are
 * read without a million hash objects.
 */
class PackedDecision implements LoggedDecision {
  readonly tsMs: number;
  readonly planId: string;
  readonly symbol: string;
  readonly action: string;
  readonly side: 'BUY' | 'SELL' | undefined;
  readonly qty: number | undefined;
  readonly notionalUsd: number | undefined;
  readonly reduceOnly: boolean | undefined;
  readonly reason: string;
  readonly detail: string | undefined;
  readonly allow: boolean;
  readonly wouldBlock: boolean;
  readonly failOpen: boolean;
  readonly enforced: boolean;
  readonly mode: 'shadow' | 'enforce' | null;
  readonly source: string;
  readonly gate: string;
  readonly via: string;
  readonly budgetUsd: number | undefined;
  readonly positionNotionalUsd: number | undefined;
  readonly projectedNotionalUsd: number | undefined;
  readonly reservedUsd: number | undefined;
  readonly hashKey: string | undefined;
  readonly policy: LoggedDecision['policy'];
  private built: Record<string, string> | undefined;

  constructor(
    readonly id: string,
    private readonly f: readonly string[],
    packed: string,
    tsMs: number,
  ) {
    this.tsMs = tsMs;
    this.planId = f[INDEX.plan_id]!;
    this.symbol = f[INDEX.symbol]!;
    this.action = f[INDEX.action]!;
    const side = f[INDEX.side];
    this.side = side === 'BUY' || side === 'SELL' ? side : undefined;
    this.qty = num(f[INDEX.qty]);
    this.notionalUsd = num(f[INDEX.notional_usd]);
    const reduceOnly = f[INDEX.reduce_only];
    this.reduceOnly = reduceOnly === '1' ? true : reduceOnly === '0' ? false : undefined;
    this.reason = f[INDEX.reason]!;
    this.detail = f[INDEX.detail] || undefined;
    this.allow = f[INDEX.allow] === '1';
    this.wouldBlock = f[INDEX.would_block] === '1';
    this.failOpen = f[INDEX.fail_open] === '1';
    this.enforced = f[INDEX.enforced] === '1';
    const mode = f[INDEX.mode];
    this.mode = mode === 'shadow' || mode === 'enforce' ? mode : null;
    this.source = f[INDEX.source] || 'none';
    this.gate = f[INDEX.gate]!;
    this.via = f[INDEX.via]!;
    this.budgetUsd = num(f[INDEX.budget_usd]);
    this.positionNotionalUsd = num(f[INDEX.position_notional_usd]);
    this.projectedNotionalUsd = num(f[INDEX.projected_notional_usd]);
    this.reservedUsd = num(f[INDEX.reserved_usd]);
    this.policy = {
      staleAfterMs: num(f[INDEX.stale_after_ms]) ?? 60000,
      violationWindowMs: num(f[INDEX.violation_window_ms]) ?? 30000,
      maxClockSkewMs: num(f[INDEX.max_clock_skew_ms]) ?? 5000,
      forceShadow: f[INDEX.force_shadow] === '1',
    };
    // The hash's identity: its values as written, the contiguous run of the packed string from
    // equity_usd to last_violation_ts, with the budget and notional that sit before it.
    if (f[INDEX.hash_ts]) {
      let from = 0;
      for (let i = 0; i < HASH_SPAN[0]; i++) from += f[i]!.length + 1;
      let to = from;
      for (let i = HASH_SPAN[0]; i <= HASH_SPAN[1]; i++) to += f[i]!.length + 1;
      this.hashKey = `${this.symbol}|${f[INDEX.budget_usd]}|${f[INDEX.position_notional_usd]}|${packed.slice(from, to - 1)}`;
    } else {
      this.hashKey = undefined;
    }
  }

  get hash(): Record<string, string> | undefined {
    if (this.hashKey === undefined) return undefined;
    if (this.built === undefined) {
      const hash: Record<string, string> = { symbol: this.symbol, timestamp: this.f[INDEX.hash_ts]! };
      const hashMode = this.f[INDEX.hash_mode];
      if (hashMode) hash.mode = hashMode;
      for (const [name, i] of HASH_INDEX) if (this.f[i]) hash[name] = this.f[i];
      this.built = hash;
    }
    return this.built;
  }
}

/**
 * The identity of a budget hash as `LoggedDecision.hashKey` gives it, from the hash's fields: two
 * hashes with the same key hold the same values wherever a decision or the engine reads them.
 */
export function hashKeyOf(hash: Readonly<Record<string, string | undefined>>): string {
  const values = [hash.symbol, hash.budget_usd, hash.position_notional_usd];
  for (let i = HASH_SPAN[0]; i <= HASH_SPAN[1]; i++) {
    const name = DECISION_LOG_FIELDS[i]!;
    values.push(name === 'hash_mode' ? hash.mode : name === 'hash_ts' ? hash.timestamp : hash[name]);
  }
  return values.map((v) => v ?? '').join(DECISION_LOG_SEPARATOR);
}

/**
 * An entry as XRANGE returns it (its id and its field list, `['d', packed]`) as a
 * `LoggedDecision`, or undefined when it is not a decision of this format (another writer's
 * entry, a later version). Readiness and replay read a million of these, so this is a hand reader
 * by position, not the zod schema; a test holds it to the schema.
 */
export function readLoggedDecision(id: string, flat: readonly string[]): LoggedDecision | undefined {
  const at = flat[0] === DECISION_LOG_STREAM_FIELD ? 0 : flat.indexOf(DECISION_LOG_STREAM_FIELD);
  const packed = at >= 0 && at % 2 === 0 ? flat[at + 1] : undefined;
  if (packed === undefined) return undefined;
  const f = packed.split(DECISION_LOG_SEPARATOR);
  if (f.length !== DECISION_LOG_FIELDS.length || f[0] !== DECISION_LOG_FORMAT) return undefined;
  const tsMs = num(f[INDEX.ts]);
  if (tsMs === undefined || !f[INDEX.reason] || !f[INDEX.gate]) return undefined;
  return new PackedDecision(id, f, packed, tsMs);
}
