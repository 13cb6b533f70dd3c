import { MarketStateHash, PositionSnapshotHash, ClusterStressHash, positionPrice, volRegimeOf } from '../../types/inputs';
import { WorkerHeartbeat } from '../../types/worker-heartbeat';
import { formatIssues } from '../../types/wire-number';
import { command, execBatch, type BatchOutcome } from '../redis/command-batch';
import { scanKeys } from '../redis/key-scanner';
import type { RedisKeys } from '../redis/keys';
import type { OverrideRead } from './mode-switch';
import type { RedisClient } from '../redis/client';
import type { StaleInputType } from './cycle-report';
import type { SymbolInputs } from '../engine/budget-record';
import { forEachInSlices } from './event-loop-slices';

/** The cluster of a symbol whose market hash names none. */
export const DEFAULT_CLUSTER_ID = 'default';

export const PORTFOLIO_READER_DEFAULTS = Object.freeze({
  /** COUNT hint of each SCAN call: one call covers a keyspace of up to about this many keys. */
  scanCount: 10000,
});

/** What the first read of a leader cycle returns. */
export interface CycleHead {
  /** The run-time mode override key. */
  override: OverrideRead;
  /** The `to` field of the mode audit stream's latest entry; null when the stream is empty. */
  auditTail: string | null;
  /** HGETALL of the portfolio state (empty when missing), or the error of reading it. */
  portfolio: Record<string, string> | Error;
  /** Symbols of the position snapshot keys found, each once. */
  symbols: string[];
  /** Symbols of the market state keys found, each once. */
  trackedSymbols: string[];
  /** Snapshot keys whose symbol part is not a valid symbol. */
  invalidKeys: string[];
  /** The leader heartbeat, undefined when absent, invalid or unreadable. */
  heartbeat: WorkerHeartbeat | undefined;
  scanPages: number;
}

/** An input that was missing or invalid and replaced by its fallback (or made the symbol skip). */
export interface InputProblem {
  inputType: StaleInputType;
  /** The symbol or cluster id concerned. */
  subject: string;
  detail: string;
}

export interface SymbolsRead {
  inputs: SymbolInputs[];
  /** Symbols left out, with the reason (none at present: an unusable snapshot costs only the position). */
  skipped: { symbol: string; reason: string }[];
  /** Counted fallbacks, an unusable position snapshot among them. */
  problems: InputProblem[];
}

export interface PortfolioReaderOptions {
  client: RedisClient;
  keys: RedisKeys;
  /** Default `PORTFOLIO_READER_DEFAULTS.scanCount`. */
  scanCount?: number;
}

const roundCents = (x: number): number => Math.round(x * 100) / 100;

/**
 * Reads a cycle's inputs from Redis in a fixed number of round trips, whatever the number of symbols:
 * (1) the mode override, the mode audit tail and the portfolio state in one batch, with the SCAN of
 * position snapshots sent alongside; (2) every symbol's position snapshot and market state in one
 * batch; (3) the stress of every distinct cluster in one batch. Only further SCAN pages add round
 * trips, one per `scanCount` keys of the keyspace.
 */
export class PortfolioReader {
  private readonly client: RedisClient;
  private readonly keys: RedisKeys;
  private readonly scanCount: number;

  constructor(options: PortfolioReaderOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.scanCount = options.scanCount ?? PORTFOLIO_READER_DEFAULTS.scanCount;
  }

  /** Round trip 1 plus the SCANs of position snapshots and market states. Rejects when Redis cannot be reached. */
  async readHead(): Promise<CycleHead> {
    const [outcomes, snapshots, markets] = await Promise.all([
      execBatch(this.client, [
        command('get', this.keys.modeOverride),
        command('xrevrange', this.keys.modeAuditStream, '+', '-', 'COUNT', 1),
        command('hgetall', this.keys.portfolioState),
        command('hgetall', this.keys.workerHeartbeat),
      ]),
      scanKeys(this.client, this.keys.positionSnapshotPattern, this.scanCount),
      scanKeys(this.client, this.keys.marketStatePattern, this.scanCount),
    ]);
    const [override, audit, portfolio, heartbeat] = outcomes as [BatchOutcome, BatchOutcome, BatchOutcome, BatchOutcome];
    const symbols = new Set<string>();
    const invalidKeys: string[] = [];
    for (const key of snapshots.keys) {
      const symbol = this.keys.symbolOfPositionSnapshot(key);
      if (symbol === undefined) invalidKeys.push(key);
      else symbols.add(symbol);
    }
    // A market key that names no valid symbol is the market engine's business, not a budget's.
    const tracked = new Set(markets.keys.map((key) => this.keys.symbolOfMarketState(key)).filter((s) => s !== undefined));
    return {
      override: override.error ?? (override.value as string | null),
      auditTail: audit.error ? null : auditTailOf(audit.value),
      portfolio: portfolio.error ?? (portfolio.value as Record<string, string>),
      symbols: [...symbols].sort(),
      trackedSymbols: [...tracked].sort(),
      invalidKeys,
      heartbeat: heartbeatOf(heartbeat),
      scanPages: snapshots.pages + markets.pages,
    };
  }

  /** The mode override and the heartbeat: what a stand-by reads each cycle. Rejects when Redis cannot be reached. */
  async readStandby(): Promise<{ override: OverrideRead; heartbeat: WorkerHeartbeat | undefined }> {
    const [override, heartbeat] = await execBatch(this.client, [
      command('get', this.keys.modeOverride),
      command('hgetall', this.keys.workerHeartbeat),
    ]);
    return { override: override!.error ?? (override!.value as string | null), heartbeat: heartbeatOf(heartbeat!) };
  }

  /** Round trips 2 and 3. Rejects when Redis cannot be reached. */
  async readSymbols(symbols: readonly string[]): Promise<SymbolsRead> {
    const result: SymbolsRead = { inputs: [], skipped: [], problems: [] };
    if (symbols.length === 0) return result;

    const outcomes = await execBatch(
      this.client,
      symbols.flatMap((symbol) => [
        command('hgetall', this.keys.positionSnapshot(symbol)),
        command('hgetall', this.keys.marketState(symbol)),
      ]),
    );

    const pending: (Omit<SymbolInputs, 'clusterStress'>)[] = [];
    // In slices: parsing 20,000 symbols' hashes must not hold the loop that serves decisions.
    await forEachInSlices(symbols, (symbol, i) => {
      const snapshot = outcomes[2 * i]!;
      const market = outcomes[2 * i + 1]!;
      const position = this.parseSnapshot(symbol, snapshot, result);
      const { clusterId, volRegime } = this.parseMarket(symbol, market, result);
      pending.push({ symbol, ...position, clusterId, volRegime });
    });

    const clusterIds = [...new Set(pending.map((p) => p.clusterId))].sort();
    const stressOutcomes = await execBatch(
      this.client,
      clusterIds.map((id) => command('hgetall', this.keys.clusterStress(id))),
    );
    const stressByCluster = new Map<string, number>();
    clusterIds.forEach((id, i) => stressByCluster.set(id, this.parseClusterStress(id, stressOutcomes[i]!, result)));

    result.inputs = pending.map((p) => ({ ...p, clusterStress: stressByCluster.get(p.clusterId) ?? 0 }));
    return result;
  }

  /**
   * A symbol's position. No snapshot (a symbol only tracked or configured, or one deleted between
   * SCAN and read) is a flat position. A snapshot whose numbers are unusable (unreadable, invalid,
   * or a notional that is not a finite number of cents) leaves the position unknown (`invalid`,
   * counted as `position`) but never costs the symbol its budget; its price is kept when it is
   * itself usable, so the gate can still size a plan given in base units.
   */
  private parseSnapshot(symbol: string, outcome: BatchOutcome, result: SymbolsRead): Pick<SymbolInputs, 'positionAmt' | 'positionPrice' | 'notionalUsd' | 'positionStatus'> {
    if (!outcome.error && Object.keys(outcome.value as object).length === 0) {
      return { positionAmt: 0, positionPrice: undefined, notionalUsd: 0, positionStatus: 'ok' };
    }
    const parsed = outcome.error ? undefined : PositionSnapshotHash.safeParse(outcome.value);
    let problem: string | undefined;
    let price: number | undefined;
    if (!parsed?.success) {
      problem = outcome.error ? `unreadable: ${outcome.error.message}` : `invalid: ${formatIssues(parsed!.error).join('; ')}`;
      price = outcome.error ? undefined : usablePrice(outcome.value as Record<string, string>);
    } else {
      const snapshot = parsed.data;
      price = positionPrice(snapshot);
      const notionalUsd = snapshot.position_amt === 0 || price === undefined ? 0 : roundCents(Math.abs(snapshot.position_amt) * price);
      if (Number.isFinite(notionalUsd)) return { positionAmt: snapshot.position_amt, positionPrice: price, notionalUsd, positionStatus: 'ok' };
      problem = `notional ${snapshot.position_amt} x ${price} is not a finite number`;
    }
    result.problems.push({ inputType: 'position', subject: symbol, detail: `position snapshot ${problem}; position unknown` });
    return { positionAmt: 0, positionPrice: price, notionalUsd: 0, positionStatus: 'invalid' };
  }

  /**
   * The cluster id and vol regime of a symbol. Fields are judged one by one, so a bad `vol_regime`
   * does not cost a good `cluster_id`: an invalid `vol_regime` is treated as absent (then `sigma`, then
   * NORMAL apply) and an invalid `cluster_id` as `default`. A missing market hash, or one that says
   * nothing usable about volatility, gives NORMAL (0.33) and counts as a `vol_regime` fallback.
   */
  private parseMarket(symbol: string, outcome: BatchOutcome, result: SymbolsRead): { clusterId: string; volRegime: number } {
    const raw = outcome.error ? {} : (outcome.value as Record<string, string>);
    const shape = MarketStateHash.shape;
    const volRegimeField = shape.vol_regime.safeParse(raw.vol_regime);
    const sigmaField = shape.sigma.safeParse(raw.sigma);
    const clusterField = shape.cluster_id.safeParse(raw.cluster_id);

    const invalid: string[] = [];
    if (!volRegimeField.success) invalid.push(`vol_regime ${JSON.stringify(raw.vol_regime)}`);
    if (!sigmaField.success) invalid.push(`sigma ${JSON.stringify(raw.sigma)}`);
    const vol = volRegimeOf({
      vol_regime: volRegimeField.success ? volRegimeField.data : undefined,
      sigma: sigmaField.success ? sigmaField.data : undefined,
    });
    if (outcome.error) {
      result.problems.push({ inputType: 'vol_regime', subject: symbol, detail: `market state unreadable: ${outcome.error.message}` });
    } else if (invalid.length > 0 || vol.source === 'default') {
      const detail = invalid.length > 0 ? `invalid ${invalid.join(', ')}` : 'no vol_regime or sigma';
      result.problems.push({ inputType: 'vol_regime', subject: symbol, detail: `${detail}; using ${vol.value}` });
    }

    let clusterId = DEFAULT_CLUSTER_ID;
    if (!clusterField.success) {
      result.problems.push({ inputType: 'cluster_stress', subject: symbol, detail: `invalid cluster_id ${JSON.stringify(raw.cluster_id)}; using ${DEFAULT_CLUSTER_ID}` });
    } else if (clusterField.data !== undefined) {
      clusterId = clusterField.data;
    }
    return { clusterId, volRegime: vol.value };
  }

  /** A cluster's stress: missing hash -> 0 (not counted, per contract); invalid -> 0 and counted. */
  private parseClusterStress(clusterId: string, outcome: BatchOutcome, result: SymbolsRead): number {
    if (!outcome.error && Object.keys(outcome.value as object).length === 0) return 0;
    const parsed = outcome.error ? undefined : ClusterStressHash.safeParse(outcome.value);
    if (parsed?.success) return parsed.data.stress;
    const detail = outcome.error ? `unreadable: ${outcome.error.message}` : `invalid: ${formatIssues(parsed!.error).join('; ')}`;
    result.problems.push({ inputType: 'cluster_stress', subject: clusterId, detail: `${detail}; using 0` });
    return 0;
  }
}

/** A snapshot's price when the snapshot as a whole failed: mark, else entry, whichever is a usable number. */
function usablePrice(raw: Record<string, string>): number | undefined {
  const shape = PositionSnapshotHash.shape;
  const mark = shape.mark_price.safeParse(raw.mark_price);
  const entry = shape.entry_price.safeParse(raw.entry_price);
  return positionPrice({ mark_price: mark.success ? mark.data : undefined, entry_price: entry.success ? entry.data : undefined });
}

function heartbeatOf(outcome: BatchOutcome): WorkerHeartbeat | undefined {
  if (outcome.error) return undefined;
  const parsed = WorkerHeartbeat.safeParse(outcome.value);
  return parsed.success ? parsed.data : undefined;
}

/** The `to` field of an XREVRANGE ... COUNT 1 reply, or null. */
function auditTailOf(reply: unknown): string | null {
  if (!Array.isArray(reply) || reply.length === 0) return null;
  const fields = (reply[0] as [string, string[]])[1];
  if (!Array.isArray(fields)) return null;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'to') return fields[i + 1]!;
  return null;
}
