import { CLUSTER_ID_PATTERN, SYMBOL_PATTERN, normalizeSymbol } from '../../types/symbol';

export const DEFAULT_KEY_PREFIX = 'quantum';
const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Where the worker reads each input, as the part of the key between the prefix and the symbol
 * (`quantum:<family>:<SYMBOL>`). The live system moved its keys once (March: positions to
 * `state:positions`, market state to `marketstate`); with the families in configuration the next
 * move is a configuration change, not a release. A legacy family of `undefined` is not read.
 */
export interface InputFamilies {
  /** The portfolio state hash, `<prefix>:<portfolio>` (no symbol). */
  portfolio: string;
  /** Positions as the P3.3 position state brain writes them (canonical). */
  positions: string;
  /** Positions as the January guide named them; read where present, the fresher one counts. */
  legacyPositions: string | undefined;
  /** Market state as the market state publisher writes it (`sigma` of 1-minute returns). */
  marketState: string;
  /** Market state of the January guide (`vol_regime` names, `sigma`, `cluster_id`); its `vol_regime` wins. */
  legacyMarket: string | undefined;
  /** Cluster stress hashes, `<prefix>:<clusterStress>:<cluster_id>`. */
  clusterStress: string;
}

/** Today's families, and the legacy ones still read beside them. */
export const DEFAULT_INPUT_FAMILIES: Readonly<InputFamilies> = Object.freeze({
  portfolio: 'state:portfolio',
  positions: 'state:positions',
  legacyPositions: 'position:snapshot',
  marketState: 'marketstate',
  legacyMarket: 'state:market',
  clusterStress: 'cluster:stress',
});

/** A family: one to eight `:`-separated segments of letters, digits, `_`, `.` or `-` (no wildcard, no space). */
export const FAMILY_PATTERN = /^[A-Za-z0-9_.-]{1,64}(?::[A-Za-z0-9_.-]{1,64}){0,7}$/;

/** A key of a family found by SCAN, with the symbol it stands for. */
export interface FamilyKey {
  key: string;
  symbol: string;
  /** True when the key names the symbol in another case (`btcusdt`): read, and named in a log line. */
  caseFolded: boolean;
}

/**
 * One key family of symbol-keyed hashes: `<prefix>:<family>:<SYMBOL>`. Builds keys for valid
 * symbols and tells the symbol of a key found by SCAN, matching it case-insensitively, so a key
 * another service wrote in lower case is read rather than silently skipped.
 */
export class KeyFamily {
  /** Everything before the symbol. */
  readonly keyPrefix: string;
  /** The SCAN MATCH pattern of the family. */
  readonly pattern: string;

  constructor(prefix: string, readonly family: string) {
    if (!FAMILY_PATTERN.test(family)) throw new KeyNameError('family', family);
    this.keyPrefix = `${prefix}:${family}:`;
    this.pattern = `${this.keyPrefix}*`;
  }

  key(symbol: string): string {
    return `${this.keyPrefix}${checked('symbol', symbol, SYMBOL_PATTERN)}`;
  }

  /** The symbol of `key`, or undefined when it is not of this family or names no symbol in any case. */
  symbolOf(key: string): FamilyKey | undefined {
    if (!key.startsWith(this.keyPrefix)) return undefined;
    const raw = key.slice(this.keyPrefix.length);
    const symbol = normalizeSymbol(raw);
    return symbol === undefined ? undefined : { key, symbol, caseFolded: symbol !== raw };
  }
}

/** Thrown when a symbol, cluster id or prefix would not make a safe key name. */
export class KeyNameError extends TypeError {
  readonly code = 'P28_KEY_NAME';
  constructor(
    readonly kind: 'symbol' | 'cluster_id' | 'prefix' | 'family',
    readonly value: unknown,
  ) {
    super(`invalid ${kind} for a Redis key: ${JSON.stringify(value)}`);
    this.name = 'KeyNameError';
  }
}

function checked(kind: 'symbol' | 'cluster_id' | 'prefix' | 'family', value: string, pattern: RegExp): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new KeyNameError(kind, value);
  return value;
}

/**
 * Every Redis key this package reads or writes, built in one place. Symbols and cluster ids are
 * validated, so no input can inject `*`, `:` or spaces into a key or a SCAN pattern.
 */
export class RedisKeys {
  readonly prefix: string;
  readonly families: Readonly<InputFamilies>;
  /** Positions, canonical family (`quantum:state:positions:<SYMBOL>`). */
  readonly positions: KeyFamily;
  /** Positions, legacy family (`quantum:position:snapshot:<SYMBOL>`), unless switched off. */
  readonly legacyPositions: KeyFamily | undefined;
  /** Market state, the publisher's family (`quantum:marketstate:<SYMBOL>`). */
  readonly marketStates: KeyFamily;
  /** Market state, legacy family (`quantum:state:market:<SYMBOL>`), unless switched off. */
  readonly legacyMarketStates: KeyFamily | undefined;

  constructor(prefix: string = DEFAULT_KEY_PREFIX, families: Partial<InputFamilies> = {}) {
    this.prefix = checked('prefix', prefix, PREFIX_PATTERN);
    this.families = Object.freeze({ ...DEFAULT_INPUT_FAMILIES, ...families });
    checked('family', this.families.portfolio, FAMILY_PATTERN);
    checked('family', this.families.clusterStress, FAMILY_PATTERN);
    this.positions = new KeyFamily(this.prefix, this.families.positions);
    this.legacyPositions = this.families.legacyPositions === undefined ? undefined : new KeyFamily(this.prefix, this.families.legacyPositions);
    this.marketStates = new KeyFamily(this.prefix, this.families.marketState);
    this.legacyMarketStates = this.families.legacyMarket === undefined ? undefined : new KeyFamily(this.prefix, this.families.legacyMarket);
  }

  /** Input: `quantum:state:portfolio` (equity_usd, timestamp, positions_count, positions_notional_usd, ...). */
  get portfolioState(): string {
    return `${this.prefix}:${this.families.portfolio}`;
  }

  /** Input, legacy family: `quantum:position:snapshot:<SYMBOL>` (the family's default name when it is switched off). */
  positionSnapshot(symbol: string): string {
    return `${this.positionSnapshotPrefix}${checked('symbol', symbol, SYMBOL_PATTERN)}`;
  }

  /** Everything before the symbol in a legacy position snapshot key. */
  get positionSnapshotPrefix(): string {
    return `${this.prefix}:${this.families.legacyPositions ?? DEFAULT_INPUT_FAMILIES.legacyPositions}:`;
  }

  /** The SCAN MATCH pattern that finds every position snapshot. */
  get positionSnapshotPattern(): string {
    return `${this.positionSnapshotPrefix}*`;
  }

  /** The symbol of a position snapshot key, or undefined if the key is not one (or names a bad symbol). */
  symbolOfPositionSnapshot(key: string): string | undefined {
    if (!key.startsWith(this.positionSnapshotPrefix)) return undefined;
    const symbol = key.slice(this.positionSnapshotPrefix.length);
    return SYMBOL_PATTERN.test(symbol) ? symbol : undefined;
  }

  /** Input: `quantum:cluster:stress:<cluster_id>`. */
  clusterStress(clusterId: string): string {
    return `${this.prefix}:${this.families.clusterStress}:${checked('cluster_id', clusterId, CLUSTER_ID_PATTERN)}`;
  }

  /** Input, legacy family: `quantum:state:market:<SYMBOL>` (vol_regime, sigma, cluster_id). */
  marketState(symbol: string): string {
    return `${this.marketStatePrefix}${checked('symbol', symbol, SYMBOL_PATTERN)}`;
  }

  /** Everything before the symbol in a market state key. */
  get marketStatePrefix(): string {
    return `${this.prefix}:${this.families.legacyMarket ?? DEFAULT_INPUT_FAMILIES.legacyMarket}:`;
  }

  /** The SCAN MATCH pattern that finds every market state hash (symbols the market engine tracks). */
  get marketStatePattern(): string {
    return `${this.marketStatePrefix}*`;
  }

  /** The symbol of a market state key, or undefined if the key is not one (or names a bad symbol). */
  symbolOfMarketState(key: string): string | undefined {
    if (!key.startsWith(this.marketStatePrefix)) return undefined;
    const symbol = key.slice(this.marketStatePrefix.length);
    return SYMBOL_PATTERN.test(symbol) ? symbol : undefined;
  }

  /** Output: `quantum:portfolio:budget:<SYMBOL>`, the hash the gate reads. */
  budget(symbol: string): string {
    return `${this.budgetPrefix}${checked('symbol', symbol, SYMBOL_PATTERN)}`;
  }

  /** Everything before the symbol in a budget hash key. */
  get budgetPrefix(): string {
    return `${this.prefix}:portfolio:budget:`;
  }

  /** The SCAN MATCH pattern that finds every budget hash. */
  get budgetPattern(): string {
    return `${this.budgetPrefix}*`;
  }

  /** The symbol of a budget hash key, or undefined if the key is not one (or names a bad symbol). */
  symbolOfBudget(key: string): string | undefined {
    if (!key.startsWith(this.budgetPrefix)) return undefined;
    const symbol = key.slice(this.budgetPrefix.length);
    return SYMBOL_PATTERN.test(symbol) ? symbol : undefined;
  }

  /** Base of the private pub/sub channels a gate's local cache sends its heartbeat on. */
  get budgetCacheHeartbeatChannelBase(): string {
    return `${this.prefix}:p28:gate-cache:heartbeat`;
  }

  /** Output: the violation event stream. */
  get violationStream(): string {
    return `${this.prefix}:stream:budget.violation`;
  }

  /** Output: every gate's decisions, for readiness and replay (`types/decision-log-entry.ts`). */
  get decisionLogStream(): string {
    return `${this.prefix}:stream:p28.decisions`;
  }

  /** Output: the worker's cycles, one entry each (`types/cycle-history-entry.ts`). */
  get cycleHistoryStream(): string {
    return `${this.prefix}:stream:p28.cycles`;
  }

  /** Run-time mode switch: a string key holding `shadow` or `enforce`, read by the worker each cycle. */
  get modeOverride(): string {
    return `${this.prefix}:p28:mode`;
  }

  /** Audit trail of mode switches. */
  get modeAuditStream(): string {
    return `${this.prefix}:stream:p28.mode`;
  }

  /** Written by the leader after every successful cycle; read by every replica for /health. */
  get workerHeartbeat(): string {
    return `${this.prefix}:p28:worker:heartbeat`;
  }

  /** The leader lease among worker replicas. */
  get workerLease(): string {
    return `${this.prefix}:p28:worker:lease`;
  }
}
