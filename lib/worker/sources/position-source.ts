import { PositionSnapshotHash, positionPrice } from '../../../types/inputs';
import type { PositionStatus } from '../../../types/budget-hash';
import { formatIssues } from '../../../types/wire-number';
import { command, type BatchOutcome, type RedisCommand } from '../../redis/command-batch';
import type { KeyFamily, RedisKeys } from '../../redis/keys';
import type { SymbolInputs } from '../../engine/budget-record';
import { judgePositionsFeed } from '../../engine/positions-feed';
import { FamilyIndex } from './family-index';
import type { InputProblem } from './input-problem';
import type { SymbolDraft, SymbolInputRead, SymbolSourceDef, SymbolsReview, SymbolsReviewContext } from './input-source';

/** A symbol's position as the cycle uses it. */
export type PositionInput = Pick<SymbolInputs, 'positionAmt' | 'positionPrice' | 'notionalUsd' | 'positionStatus'>;

export interface PositionSourceOptions {
  /** Canonical family first (the P3.3 position state brain's), then the legacy one when read. */
  canonical: KeyFamily;
  legacy: KeyFamily | undefined;
  /** POSITION_STALE_SEC: a position read from the exchange longer ago than this is unknown, not flat. */
  staleSec: number;
  /** POSITIONS_FEED_TOLERANCE_PCT (default `POSITIONS_FEED_DEFAULTS.notionalTolerancePct`). */
  feedTolerancePct?: number;
}

type Labels = 'position' | 'position_snapshot';

/** What the canonical family showed this cycle, to hold against the portfolio state's counts. */
export interface PositionsSeen {
  keys: number;
  notionalUsd: number;
}

const roundCents = (x: number): number => Math.round(x * 100) / 100;
const FLAT: PositionInput = Object.freeze({ positionAmt: 0, positionPrice: undefined, notionalUsd: 0, positionStatus: 'ok' as PositionStatus });

interface Candidate {
  family: 'canonical' | 'legacy';
  raw: Record<string, string> | Error;
  /** The hash parsed once, for the choice between families, the tally and the judgement. */
  parsed: ReturnType<typeof PositionSnapshotHash.safeParse> | undefined;
}

/**
 * The positions input. Reads both families (canonical `quantum:state:positions:<SYMBOL>`, legacy
 * `quantum:position:snapshot:<SYMBOL>`), keeps the fresher hash of a symbol found in both (by
 * `ts_epoch`, else `timestamp`; the canonical one when either has none), and judges it:
 * - no hash in either family: flat (`ok`), unless the feed check later says the feed is incomplete;
 * - unusable numbers: `invalid`;
 * - older than POSITION_STALE_SEC (or a canonical hash without `ts_epoch`, whose age cannot be
 *   told): `stale`. A legacy hash without a timestamp is taken as it is, as it always was.
 * Every unknown position is an `InputProblem` of type `position`: counted, never silent. A symbol
 * with a position key gets a budget; a key naming no symbol is skipped and counted as
 * `position_snapshot`.
 */
export class PositionSource implements SymbolInputRead<PositionInput, Labels> {
  readonly families: readonly KeyFamily[];
  readonly universe = 'held';
  readonly invalidKeyLabel = 'position_snapshot';
  private readonly index: FamilyIndex;
  private seen: PositionsSeen = { keys: 0, notionalUsd: 0 };

  constructor(private readonly options: PositionSourceOptions) {
    this.families = options.legacy ? [options.canonical, options.legacy] : [options.canonical];
    this.index = new FamilyIndex(this.families);
  }

  /** Takes the keys SCAN found in each family (same order as `families`); returns the symbols held in either. */
  discover(keysByFamily: readonly (readonly string[])[]) {
    return this.index.take(keysByFamily);
  }

  /** The reads of a symbol: one HGETALL per family that has a key for it. */
  commands(symbol: string): RedisCommand[] {
    return this.index.keysOf(symbol).map((key) => command('hgetall', key));
  }

  /** Starts a cycle's tally of what the canonical family showed. */
  beginCycle(): void {
    this.seen = { keys: 0, notionalUsd: 0 };
  }

  /** A symbol's position from the outcomes of `commands(symbol)`, in the same order. */
  judge(symbol: string, outcomes: readonly BatchOutcome[], nowSec: number, problems: InputProblem<Labels>[]): PositionInput {
    const families = this.index.familiesOf(symbol);
    const candidates: Candidate[] = [];
    outcomes.forEach((outcome, i) => {
      const family = families[i] === 0 ? 'canonical' : 'legacy';
      const raw = outcome.error ?? (outcome.value as Record<string, string>);
      if (!(raw instanceof Error) && Object.keys(raw).length === 0) return;
      const parsed = raw instanceof Error ? undefined : PositionSnapshotHash.safeParse(raw);
      if (family === 'canonical') this.tally(parsed);
      candidates.push({ family, raw, parsed });
    });
    if (candidates.length === 0) return FLAT;
    return this.judgeOne(symbol, freshest(candidates), nowSec, problems);
  }

  /**
   * A missing position is not a flat one: when the position keys show fewer positions or clearly
   * less notional than the fresh portfolio state counts, every symbol that reads as flat may be the
   * one missing, so its position is `unknown` (the positions it does see are real and stay).
   */
  review(drafts: SymbolDraft[], { portfolio }: SymbolsReviewContext, problems: InputProblem<Labels>[]): SymbolsReview {
    if (portfolio === undefined) return { positionsFeed: { complete: true } };
    const verdict = judgePositionsFeed(
      { portfolioCount: portfolio.positions_count, portfolioNotionalUsd: portfolio.positions_notional_usd, keysSeen: this.seen.keys, notionalSeenUsd: this.seen.notionalUsd },
      this.options.feedTolerancePct,
    );
    if (verdict.complete) return { positionsFeed: verdict };
    for (const d of drafts) {
      if (d.positionStatus !== 'ok' || d.positionAmt !== 0) continue;
      d.positionStatus = 'unknown';
      problems.push({ inputType: 'position', subject: d.symbol, detail: `positions feed incomplete (${verdict.problem}); a flat-looking position is unknown` });
    }
    return { positionsFeed: verdict };
  }

  private tally(parsed: Candidate['parsed']): void {
    this.seen.keys += 1;
    if (!parsed?.success) return;
    const notional = Math.abs(parsed.data.position_amt * (parsed.data.mark_price ?? 0));
    if (Number.isFinite(notional)) this.seen.notionalUsd += notional;
  }

  private judgeOne(symbol: string, chosen: Candidate, nowSec: number, problems: InputProblem<Labels>[]): PositionInput {
    const where = `${chosen.family} position`;
    if (chosen.raw instanceof Error) return unknown(symbol, 'invalid', `${where} unreadable: ${chosen.raw.message}`, undefined, problems);
    const parsed = chosen.parsed!;
    if (!parsed.success) {
      return unknown(symbol, 'invalid', `${where} invalid: ${formatIssues(parsed.error).join('; ')}`, usablePrice(chosen.raw), problems);
    }
    const position = parsed.data;
    const price = positionPrice(position);
    const readAt = position.ts_epoch ?? position.timestamp;
    if (readAt === undefined && chosen.family === 'canonical') {
      return unknown(symbol, 'stale', `${where} has no ts_epoch: its age cannot be told`, price, problems);
    }
    if (readAt !== undefined) {
      const ageSec = nowSec - readAt;
      if (ageSec > this.options.staleSec || -ageSec > this.options.staleSec) {
        const age = ageSec >= 0 ? `${Math.round(ageSec)} s old` : `${Math.round(-ageSec)} s in the future`;
        return unknown(symbol, 'stale', `${where} ${age}, limit POSITION_STALE_SEC=${this.options.staleSec}`, price, problems);
      }
    }
    const notionalUsd = position.position_amt === 0 || price === undefined ? 0 : roundCents(Math.abs(position.position_amt) * price);
    if (!Number.isFinite(notionalUsd)) {
      return unknown(symbol, 'invalid', `${where}: notional ${position.position_amt} x ${price} is not a finite number`, price, problems);
    }
    return { positionAmt: position.position_amt, positionPrice: price, notionalUsd, positionStatus: 'ok' };
  }
}

/** The candidate with the newest timestamp; the canonical one when a timestamp is missing or they tie. */
function freshest(candidates: Candidate[]): Candidate {
  if (candidates.length === 1) return candidates[0]!;
  const [canonical, legacy] = candidates as [Candidate, Candidate];
  const a = readAtOf(canonical);
  const b = readAtOf(legacy);
  return a !== undefined && b !== undefined && b > a ? legacy : canonical;
}

/** When the position was read from the exchange (`ts_epoch`, else `timestamp`); undefined for a hash that fails. */
function readAtOf(candidate: Candidate): number | undefined {
  if (!candidate.parsed?.success) return undefined;
  return candidate.parsed.data.ts_epoch ?? candidate.parsed.data.timestamp;
}

function unknown(symbol: string, status: PositionStatus, detail: string, price: number | undefined, problems: InputProblem<Labels>[]): PositionInput {
  problems.push({ inputType: 'position', subject: symbol, detail: `${detail}; position ${status}, judged as unknown` });
  return { positionAmt: 0, positionPrice: price, notionalUsd: 0, positionStatus: status };
}

/** A position's price when the hash as a whole failed: mark, else entry, whichever is a usable number. */
function usablePrice(raw: Record<string, string>): number | undefined {
  const shape = PositionSnapshotHash.shape;
  const mark = shape.mark_price.safeParse(raw.mark_price);
  const entry = shape.entry_price.safeParse(raw.entry_price);
  return positionPrice({ mark_price: mark.success ? mark.data : undefined, entry_price: entry.success ? entry.data : undefined });
}

type PositionSettings = { keys: RedisKeys; positionStaleSec: number; positionsFeedTolerancePct: number };

export const positionSource = {
  name: 'positions',
  scope: 'symbol',
  staleLabels: ['position_snapshot', 'position'],
  create: (s: PositionSettings) =>
    new PositionSource({ canonical: s.keys.positions, legacy: s.keys.legacyPositions, staleSec: s.positionStaleSec, feedTolerancePct: s.positionsFeedTolerancePct }),
} as const satisfies SymbolSourceDef<PositionInput, Labels, PositionSettings>;
