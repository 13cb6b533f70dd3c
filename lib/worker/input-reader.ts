import type { PortfolioStateHash } from '../../types/inputs';
import { WorkerHeartbeat } from '../../types/worker-heartbeat';
import { command, execBatch, type BatchOutcome } from '../redis/command-batch';
import { scanKeys } from '../redis/key-scanner';
import type { RedisKeys } from '../redis/keys';
import type { OverrideRead } from './mode-switch';
import type { RedisClient } from '../redis/client';
import type { SymbolInputs } from '../engine/budget-record';
import type { PositionsFeedVerdict } from '../engine/positions-feed';
import type { StaleInputType } from './cycle-report';
import type { HeatReader } from './sources/heat-source';
import { INPUT_SOURCES, SOURCE_LIMIT_DEFAULTS, sourceLimitsOf, type InputSource, type PortfolioInputs, type SourceLimits, type StaleInputLabel } from './sources/index';
import type { InputProblem } from './sources/input-problem';
import type { ClusterInputRead, PortfolioInputRead, SymbolDraft, SymbolInputRead } from './sources/input-source';
import { forEachInSlices } from './event-loop-slices';

export const PORTFOLIO_READER_DEFAULTS = Object.freeze({
  /** COUNT hint of each SCAN call: one call covers a keyspace of up to about this many keys. */
  scanCount: 10000,
  /** The sources' limits (STALE_SEC, POSITION_STALE_SEC, ...). */
  ...SOURCE_LIMIT_DEFAULTS,
});

/** What the first read of a leader cycle returns. */
export interface CycleHead {
  /** The run-time mode override key. */
  override: OverrideRead;
  /** The `to` field of the mode audit stream's latest entry; null when the stream is empty. */
  auditTail: string | null;
  /** The value of every portfolio-wide input (the portfolio state as judged, heat), by source name. */
  inputs: PortfolioInputs;
  /** Fallbacks of the portfolio-wide inputs, and keys of a per-symbol input that name no symbol. */
  problems: InputProblem<StaleInputLabel>[];
  /** Symbols with a key of an input whose keys make a budget (a position), each once. */
  symbols: string[];
  /** Symbols with a key of an input that tracks them (a market state), each once. */
  trackedSymbols: string[];
  /** Keys of an input that counts them (positions) whose symbol part is not a symbol in any case. */
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
  problems: InputProblem<StaleInputType>[];
  /** Whether the positions feed agrees with the portfolio state; when not, flat-looking positions are `unknown`. */
  positionsFeed: PositionsFeedVerdict;
}

export interface PortfolioReaderOptions {
  client: RedisClient;
  keys: RedisKeys;
  heat: HeatReader;
  /** Default `PORTFOLIO_READER_DEFAULTS.scanCount`. */
  scanCount?: number;
  /** The sources' limits: the worker's configuration (default `SOURCE_LIMIT_DEFAULTS` for each one missing). */
  limits?: Partial<SourceLimits>;
  /** The inputs read (default `INPUT_SOURCES`). */
  sources?: readonly InputSource[];
}

type Labels = StaleInputLabel;
const HEAD_COMMANDS = 3;

/**
 * Reads a cycle's inputs from Redis in a fixed number of round trips, whatever the number of
 * symbols, by running over the sources (`sources/index.ts`) by scope: (1) the mode override, the
 * mode audit tail, the heartbeat and every portfolio-wide source's reads (the portfolio state) in
 * one batch, with the SCANs of every per-symbol source's families sent alongside and heat fetched
 * meanwhile; (2) every symbol's keys that exist, of every per-symbol source, in one batch; (3) every
 * per-cluster source's keys of every distinct cluster named, in one batch. Only further SCAN pages
 * add round trips, one per `scanCount` keys of the keyspace.
 */
export class PortfolioReader {
  private readonly client: RedisClient;
  private readonly keys: RedisKeys;
  private readonly scanCount: number;
  private readonly portfolio: { name: string; source: PortfolioInputRead<unknown, Labels> }[] = [];
  private readonly symbol: SymbolInputRead<Partial<SymbolInputs>, Labels>[] = [];
  private readonly cluster: ClusterInputRead<Partial<SymbolInputs>, Labels>[] = [];

  constructor(options: PortfolioReaderOptions) {
    const { client, keys, heat, scanCount, sources, limits } = options;
    this.client = client;
    this.keys = keys;
    this.scanCount = scanCount ?? PORTFOLIO_READER_DEFAULTS.scanCount;
    const settings = { ...sourceLimitsOf(limits ?? {}), keys, heat };
    for (const def of sources ?? INPUT_SOURCES) {
      if (def.scope === 'portfolio') this.portfolio.push({ name: def.name, source: def.create(settings) });
      else if (def.scope === 'symbol') this.symbol.push(def.create(settings));
      else this.cluster.push(def.create(settings));
    }
  }

  /**
   * Round trip 1, the portfolio-wide inputs judged at `nowMs`, and the SCANs of the per-symbol
   * inputs' families. Rejects when Redis cannot be reached.
   */
  async readHead(nowMs: number = Date.now()): Promise<CycleHead> {
    const scan = (pattern: string) => scanKeys(this.client, pattern, this.scanCount);
    const portfolioCommands = this.portfolio.map((p) => p.source.commands());
    const batch = execBatch(this.client, [
      command('get', this.keys.modeOverride),
      command('xrevrange', this.keys.modeAuditStream, '+', '-', 'COUNT', 1),
      command('hgetall', this.keys.workerHeartbeat),
      ...portfolioCommands.flat(),
    ]);
    const problemsBySource = this.portfolio.map(() => [] as InputProblem<Labels>[]);
    let at = HEAD_COMMANDS;
    const reads = this.portfolio.map((p, i) => {
      const from = at;
      const to = (at += portfolioCommands[i]!.length);
      return p.source.read(batch.then((o) => o.slice(from, to)), nowMs, problemsBySource[i]!);
    });
    const [outcomes, scans, values] = await Promise.all([
      batch,
      Promise.all(this.symbol.map((s) => Promise.all(s.families.map((f) => scan(f.pattern))))),
      Promise.all(reads),
    ]);
    const [override, audit, heartbeat] = outcomes as [BatchOutcome, BatchOutcome, BatchOutcome];
    const head: CycleHead = {
      override: override.error ?? (override.value as string | null),
      auditTail: audit.error ? null : auditTailOf(audit.value),
      inputs: Object.fromEntries(this.portfolio.map((p, i) => [p.name, values[i]])) as PortfolioInputs,
      problems: problemsBySource.flat(),
      symbols: [],
      trackedSymbols: [],
      invalidKeys: [],
      caseFoldedKeys: [],
      heartbeat: heartbeatOf(heartbeat),
      scanPages: scans.flat().reduce((n, r) => n + r.pages, 0),
    };
    this.discover(head, scans.map((bySource) => bySource.map((r) => r.keys)));
    return head;
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
   * portfolio state, which a per-symbol source may hold its inputs against (the positions feed;
   * undefined: no check). Rejects when Redis cannot be reached.
   */
  async readSymbols(symbols: readonly string[], nowMs: number, portfolio?: PortfolioStateHash): Promise<SymbolsRead> {
    const result: SymbolsRead = { inputs: [], skipped: [], problems: [], positionsFeed: { complete: true } };
    if (symbols.length === 0) return result;
    const nowSec = nowMs / 1000;
    const problems: InputProblem<Labels>[] = result.problems as InputProblem<Labels>[];

    const plan = symbols.map((symbol) => ({ symbol, commands: this.symbol.map((s) => s.commands(symbol)) }));
    const outcomes = await execBatch(this.client, plan.flatMap((p) => p.commands.flat()));
    for (const s of this.symbol) s.beginCycle?.();
    const drafts: SymbolDraft[] = [];
    let at = 0;
    // In slices: judging 20,000 symbols' hashes must not hold the loop that serves decisions.
    await forEachInSlices(plan, (p) => {
      const draft: SymbolDraft = { symbol: p.symbol };
      this.symbol.forEach((s, i) => {
        const n = p.commands[i]!.length;
        Object.assign(draft, s.judge(p.symbol, outcomes.slice(at, at + n), nowSec, problems));
        at += n;
      });
      drafts.push(draft);
    });
    for (const s of this.symbol) Object.assign(result, s.review?.(drafts, { portfolio }, problems));

    await this.readClusters(drafts, nowSec, problems);
    result.inputs = drafts as SymbolInputs[];
    return result;
  }

  /** Round trip 3: every per-cluster input of every distinct cluster the drafts name, merged into each draft. */
  private async readClusters(drafts: SymbolDraft[], nowSec: number, problems: InputProblem<Labels>[]): Promise<void> {
    if (this.cluster.length === 0) return;
    const clusterIds = [...new Set(drafts.map((d) => d.clusterId!))].sort();
    const plan = clusterIds.map((id) => ({ id, commands: this.cluster.map((c) => c.commands(id)) }));
    const outcomes = await execBatch(this.client, plan.flatMap((p) => p.commands.flat()));
    const byCluster = new Map<string, Partial<SymbolInputs>>();
    let at = 0;
    for (const p of plan) {
      const fields: Partial<SymbolInputs> = {};
      this.cluster.forEach((c, i) => {
        const n = p.commands[i]!.length;
        Object.assign(fields, c.judge(p.id, outcomes.slice(at, at + n), nowSec, problems));
        at += n;
      });
      byCluster.set(p.id, fields);
    }
    for (const d of drafts) Object.assign(d, byCluster.get(d.clusterId!));
  }

  /** The symbols each per-symbol input's SCAN found, and the keys that named none or named one in another case. */
  private discover(head: CycleHead, keysBySource: string[][][]): void {
    const held = new Set<string>();
    const tracked = new Set<string>();
    this.symbol.forEach((s, i) => {
      const found = s.discover(keysBySource[i]!);
      const universe = s.universe === 'held' ? held : s.universe === 'tracked' ? tracked : undefined;
      if (universe) for (const symbol of found.symbols) universe.add(symbol);
      head.caseFoldedKeys.push(...found.caseFoldedKeys);
      // A key naming no symbol is counted by the input that makes budgets; another input's is its writer's business.
      if (s.invalidKeyLabel === undefined) return;
      head.invalidKeys.push(...found.invalidKeys);
      for (const key of found.invalidKeys) head.problems.push({ inputType: s.invalidKeyLabel, subject: key, detail: 'key does not name a valid symbol' });
    });
    head.symbols = [...held].sort();
    head.trackedSymbols = [...tracked].sort();
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
