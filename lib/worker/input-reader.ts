import type { PortfolioStateHash } from '../../types/inputs';
import { WorkerHeartbeat } from '../../types/worker-heartbeat';
import { command, execBatch, type BatchOutcome } from '../redis/command-batch';
import { scanKeys } from '../redis/key-scanner';
import type { RedisKeys } from '../redis/keys';
import type { OverrideRead } from './mode-switch';
import type { RedisClient } from '../redis/client';
import type { SymbolInputs } from '../engine/budget-record';
import { judgePositionsFeed, type PositionsFeedVerdict } from '../engine/positions-feed';
import { PositionSource } from './sources/position-source';
import { MarketStateSource } from './sources/market-state-source';
import { ClusterStressSource } from './sources/cluster-stress-source';
import type { InputProblem } from './sources/input-problem';
import { forEachInSlices } from './event-loop-slices';

export const PORTFOLIO_READER_DEFAULTS = Object.freeze({
  /** COUNT hint of each SCAN call: one call covers a keyspace of up to about this many keys. */
  scanCount: 10000,
  /** POSITION_STALE_SEC. */
  positionStaleSec: 60,
  /** MARKET_STATE_STALE_SEC: ten publishing intervals of the market state publisher, its own TTL. */
  marketStateStaleSec: 600,
  /** MAX_LKG_AGE_SEC, for cluster stress. */
  maxLkgAgeSec: 900,
  /** POSITIONS_FEED_TOLERANCE_PCT. */
  positionsFeedTolerancePct: 5,
});

/** What the first read of a leader cycle returns. */
export interface CycleHead {
  /** The run-time mode override key. */
  override: OverrideRead;
  /** The `to` field of the mode audit stream's latest entry; null when the stream is empty. */
  auditTail: string | null;
  /** HGETALL of the portfolio state (empty when missing), or the error of reading it. */
  portfolio: Record<string, string> | Error;
  /** Symbols with a position key in either family, each once. */
  symbols: string[];
  /** Symbols with a market state key in either family, each once. */
  trackedSymbols: string[];
  /** Position keys whose symbol part is not a symbol in any case. */
  invalidKeys: string[];
  /** Input keys that name a symbol in another case (`btcusdt`), read as that symbol. */
  caseFoldedKeys: string[];
  /** The leader heartbeat, undefined when absent, invalid or unreadable. */
  heartbeat: WorkerHeartbeat | undefined;
  scanPages: number;
}

export interface SymbolsRead {
  inputs: SymbolInputs[];
  /** Symbols left out, with the reason (none at present: an unusable position costs only the position). */
  skipped: { symbol: string; reason: string }[];
  /** Counted fallbacks, unknown positions among them. */
  problems: InputProblem[];
  /** Whether the positions feed agrees with the portfolio state; when not, flat-looking positions are `unknown`. */
  positionsFeed: PositionsFeedVerdict;
}

export interface PortfolioReaderOptions {
  client: RedisClient;
  keys: RedisKeys;
  /** Default `PORTFOLIO_READER_DEFAULTS.scanCount`. */
  scanCount?: number;
  positionStaleSec?: number;
  marketStateStaleSec?: number;
  maxLkgAgeSec?: number;
  positionsFeedTolerancePct?: number;
}

/**
 * Reads a cycle's inputs from Redis in a fixed number of round trips, whatever the number of
 * symbols, through one source per input (`sources/`): (1) the mode override, the mode audit tail,
 * the portfolio state and the heartbeat in one batch, with the SCANs of every position and market
 * state family sent alongside; (2) every symbol's position and market state keys that exist, in
 * one batch; (3) the stress of every distinct cluster in one batch. Only further SCAN pages add
 * round trips, one per `scanCount` keys of the keyspace.
 */
export class PortfolioReader {
  private readonly client: RedisClient;
  private readonly keys: RedisKeys;
  private readonly scanCount: number;
  private readonly positions: PositionSource;
  private readonly markets: MarketStateSource;
  private readonly clusters: ClusterStressSource;
  private readonly feedTolerancePct: number;

  constructor(options: PortfolioReaderOptions) {
    const d = PORTFOLIO_READER_DEFAULTS;
    this.client = options.client;
    this.keys = options.keys;
    this.scanCount = options.scanCount ?? d.scanCount;
    this.positions = new PositionSource({ canonical: this.keys.positions, legacy: this.keys.legacyPositions, staleSec: options.positionStaleSec ?? d.positionStaleSec });
    this.markets = new MarketStateSource({ live: this.keys.marketStates, legacy: this.keys.legacyMarketStates, staleSec: options.marketStateStaleSec ?? d.marketStateStaleSec });
    this.clusters = new ClusterStressSource({ keys: this.keys, maxLkgAgeSec: options.maxLkgAgeSec ?? d.maxLkgAgeSec });
    this.feedTolerancePct = options.positionsFeedTolerancePct ?? d.positionsFeedTolerancePct;
  }

  /** Round trip 1 plus the SCANs of the position and market state families. Rejects when Redis cannot be reached. */
  async readHead(): Promise<CycleHead> {
    const scan = (pattern: string) => scanKeys(this.client, pattern, this.scanCount);
    const [outcomes, positionScans, marketScans] = await Promise.all([
      execBatch(this.client, [
        command('get', this.keys.modeOverride),
        command('xrevrange', this.keys.modeAuditStream, '+', '-', 'COUNT', 1),
        command('hgetall', this.keys.portfolioState),
        command('hgetall', this.keys.workerHeartbeat),
      ]),
      Promise.all(this.positions.families.map((f) => scan(f.pattern))),
      Promise.all(this.markets.families.map((f) => scan(f.pattern))),
    ]);
    const [override, audit, portfolio, heartbeat] = outcomes as [BatchOutcome, BatchOutcome, BatchOutcome, BatchOutcome];
    const held = this.positions.discover(positionScans.map((r) => r.keys));
    // A market key that names no symbol is the market engine's business, not a budget's.
    const tracked = this.markets.discover(marketScans.map((r) => r.keys));
    return {
      override: override.error ?? (override.value as string | null),
      auditTail: audit.error ? null : auditTailOf(audit.value),
      portfolio: portfolio.error ?? (portfolio.value as Record<string, string>),
      symbols: held.symbols,
      trackedSymbols: tracked.symbols,
      invalidKeys: held.invalidKeys,
      caseFoldedKeys: [...held.caseFoldedKeys, ...tracked.caseFoldedKeys],
      heartbeat: heartbeatOf(heartbeat),
      scanPages: [...positionScans, ...marketScans].reduce((n, r) => n + r.pages, 0),
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

  /**
   * Round trips 2 and 3, for the symbols of `readHead`'s universe. `portfolio` is the fresh
   * portfolio state, whose position counts the positions feed is held against (undefined: no check).
   * Rejects when Redis cannot be reached.
   */
  async readSymbols(symbols: readonly string[], nowMs: number, portfolio?: PortfolioStateHash): Promise<SymbolsRead> {
    const result: SymbolsRead = { inputs: [], skipped: [], problems: [], positionsFeed: { complete: true } };
    if (symbols.length === 0) return result;
    const nowSec = nowMs / 1000;

    const plan = symbols.map((symbol) => ({ symbol, positions: this.positions.commands(symbol), markets: this.markets.commands(symbol) }));
    const outcomes = await execBatch(this.client, plan.flatMap((p) => [...p.positions, ...p.markets]));

    this.positions.beginCycle();
    const pending: Omit<SymbolInputs, 'clusterStress'>[] = [];
    let at = 0;
    // In slices: judging 20,000 symbols' hashes must not hold the loop that serves decisions.
    await forEachInSlices(plan, (p) => {
      const positionOutcomes = outcomes.slice(at, at + p.positions.length);
      at += p.positions.length;
      const marketOutcomes = outcomes.slice(at, at + p.markets.length);
      at += p.markets.length;
      const position = this.positions.judge(p.symbol, positionOutcomes, nowSec, result.problems);
      const market = this.markets.judge(p.symbol, marketOutcomes, nowSec, result.problems);
      pending.push({ symbol: p.symbol, ...position, ...market });
    });
    result.positionsFeed = this.checkFeed(pending, portfolio, result.problems);

    const clusterIds = [...new Set(pending.map((p) => p.clusterId))].sort();
    const stressOutcomes = await execBatch(this.client, this.clusters.commands(clusterIds));
    const stressByCluster = new Map<string, number>();
    clusterIds.forEach((id, i) => stressByCluster.set(id, this.clusters.judge(id, stressOutcomes[i]!, nowSec, result.problems)));

    result.inputs = pending.map((p) => ({ ...p, clusterStress: stressByCluster.get(p.clusterId) ?? 0 }));
    return result;
  }

  /**
   * A missing position is not a flat one: when the position keys show fewer positions or clearly
   * less notional than the portfolio state counts, every symbol that reads as flat may be the one
   * missing, so its position is `unknown` (the positions it does see are real and stay).
   */
  private checkFeed(pending: Omit<SymbolInputs, 'clusterStress'>[], portfolio: PortfolioStateHash | undefined, problems: InputProblem[]): PositionsFeedVerdict {
    if (portfolio === undefined) return { complete: true };
    const seen = this.positions.positionsSeen;
    const verdict = judgePositionsFeed(
      { portfolioCount: portfolio.positions_count, portfolioNotionalUsd: portfolio.positions_notional_usd, keysSeen: seen.keys, notionalSeenUsd: seen.notionalUsd },
      this.feedTolerancePct,
    );
    if (verdict.complete) return verdict;
    for (const p of pending) {
      if (p.positionStatus !== 'ok' || p.positionAmt !== 0) continue;
      p.positionStatus = 'unknown';
      problems.push({ inputType: 'position', subject: p.symbol, detail: `positions feed incomplete (${verdict.problem}); a flat-looking position is unknown` });
    }
    return verdict;
  }
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
