import { CLUSTER_ID_PATTERN, SYMBOL_PATTERN } from '../../types/symbol';

export const DEFAULT_KEY_PREFIX = 'quantum';
const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Thrown when a symbol, cluster id or prefix would not make a safe key name. */
export class KeyNameError extends TypeError {
  readonly code = 'P28_KEY_NAME';
  constructor(
    readonly kind: 'symbol' | 'cluster_id' | 'prefix',
    readonly value: unknown,
  ) {
    super(`invalid ${kind} for a Redis key: ${JSON.stringify(value)}`);
    this.name = 'KeyNameError';
  }
}

function checked(kind: 'symbol' | 'cluster_id' | 'prefix', value: string, pattern: RegExp): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new KeyNameError(kind, value);
  return value;
}

/**
 * Every Redis key this package reads or writes, built in one place. Symbols and cluster ids are
 * validated, so no input can inject `*`, `:` or spaces into a key or a SCAN pattern.
 */
export class RedisKeys {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_KEY_PREFIX) {
    this.prefix = checked('prefix', prefix, PREFIX_PATTERN);
  }

  /** Input: `quantum:state:portfolio` (equity_usd, drawdown, timestamp). */
  get portfolioState(): string {
    return `${this.prefix}:state:portfolio`;
  }

  /** Input: `quantum:position:snapshot:<SYMBOL>`. */
  positionSnapshot(symbol: string): string {
    return `${this.positionSnapshotPrefix}${checked('symbol', symbol, SYMBOL_PATTERN)}`;
  }

  /** Everything before the symbol in a position snapshot key. */
  get positionSnapshotPrefix(): string {
    return `${this.prefix}:position:snapshot:`;
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
    return `${this.prefix}:cluster:stress:${checked('cluster_id', clusterId, CLUSTER_ID_PATTERN)}`;
  }

  /** Input: `quantum:state:market:<SYMBOL>` (vol_regime, sigma, cluster_id). */
  marketState(symbol: string): string {
    return `${this.marketStatePrefix}${checked('symbol', symbol, SYMBOL_PATTERN)}`;
  }

  /** Everything before the symbol in a market state key. */
  get marketStatePrefix(): string {
    return `${this.prefix}:state:market:`;
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
