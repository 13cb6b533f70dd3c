import { DEFAULT_VOL_REGIME, LiveMarketStateHash, MarketStateHash, volRegimeFromMinuteSigma, volRegimeFromSigma } from '../../../types/inputs';
import { command, type BatchOutcome, type RedisCommand } from '../../redis/command-batch';
import type { KeyFamily, RedisKeys } from '../../redis/keys';
import { FamilyIndex } from './family-index';
import type { InputProblem } from './input-problem';
import type { SymbolInputRead, SymbolSourceDef } from './input-source';

/** The cluster of a symbol whose market state names none. */
export const DEFAULT_CLUSTER_ID = 'default';

export interface MarketStateSourceOptions {
  /** The market state publisher's family (`quantum:marketstate:<SYMBOL>`: `sigma` of 1-minute returns). */
  live: KeyFamily;
  /** The legacy family (`quantum:state:market:<SYMBOL>`: `vol_regime` names, `sigma`, `cluster_id`). */
  legacy: KeyFamily | undefined;
  /** MARKET_STATE_STALE_SEC: a live market state computed longer ago than this is not used. */
  staleSec: number;
}

export interface MarketInput {
  clusterId: string;
  volRegime: number;
}

type Labels = 'vol_regime' | 'cluster_stress';

/**
 * The market state input: each symbol's volatility regime and cluster. In order, the first that
 * holds gives the regime: the legacy hash's `vol_regime` (a name or a number, as its writers wrote
 * it); the live hash's `sigma`, through the 1-minute bands (`volRegimeFromMinuteSigma`), while its
 * `ts_timestamp` is within MARKET_STATE_STALE_SEC; the legacy hash's `sigma`, through the guide's
 * bands; else NORMAL (0.33), counted. The cluster is the legacy hash's `cluster_id`, else `default`
 * (the live publisher writes none). Fields are judged one by one, so a bad one never costs a good one.
 * A symbol with a market state gets a budget; a key naming no symbol is the market engine's
 * business, not a budget's, and is passed over.
 */
export class MarketStateSource implements SymbolInputRead<MarketInput, Labels> {
  readonly families: readonly KeyFamily[];
  readonly universe = 'tracked';
  readonly invalidKeyLabel = undefined;
  private readonly index: FamilyIndex;

  constructor(private readonly options: MarketStateSourceOptions) {
    this.families = options.legacy ? [options.live, options.legacy] : [options.live];
    this.index = new FamilyIndex(this.families);
  }

  /** Takes the keys SCAN found in each family (same order as `families`); returns the symbols tracked in either. */
  discover(keysByFamily: readonly (readonly string[])[]) {
    return this.index.take(keysByFamily);
  }

  commands(symbol: string): RedisCommand[] {
    return this.index.keysOf(symbol).map((key) => command('hgetall', key));
  }

  judge(symbol: string, outcomes: readonly BatchOutcome[], nowSec: number, problems: InputProblem<Labels>[]): MarketInput {
    const families = this.index.familiesOf(symbol);
    let live: Record<string, string> = {};
    let legacy: Record<string, string> = {};
    outcomes.forEach((outcome, i) => {
      if (outcome.error) {
        problems.push({ inputType: 'vol_regime', subject: symbol, detail: `market state unreadable: ${outcome.error.message}` });
        return;
      }
      if (families[i] === 0) live = outcome.value as Record<string, string>;
      else legacy = outcome.value as Record<string, string>;
    });
    return { volRegime: this.volRegime(symbol, live, legacy, nowSec, problems), clusterId: clusterOf(symbol, legacy, problems) };
  }

  private volRegime(symbol: string, live: Record<string, string>, legacy: Record<string, string>, nowSec: number, problems: InputProblem<Labels>[]): number {
    const notes: string[] = [];
    const legacyShape = MarketStateHash.shape;
    if (legacy.vol_regime !== undefined) {
      const named = legacyShape.vol_regime.safeParse(legacy.vol_regime);
      if (named.success && named.data !== undefined) return named.data;
      notes.push(`invalid vol_regime ${JSON.stringify(legacy.vol_regime)}`);
    }
    if (live.sigma !== undefined) {
      const sigma = LiveMarketStateHash.shape.sigma.safeParse(live.sigma);
      const at = LiveMarketStateHash.shape.ts_timestamp.safeParse(live.ts_timestamp);
      const ageSec = at.success && at.data !== undefined ? nowSec - at.data : undefined;
      if (!sigma.success || sigma.data === undefined) notes.push(`invalid sigma ${JSON.stringify(live.sigma)} in the live market state`);
      else if (ageSec !== undefined && (ageSec > this.options.staleSec || -ageSec > this.options.staleSec)) {
        notes.push(`live market state ${Math.round(ageSec)} s old, limit MARKET_STATE_STALE_SEC=${this.options.staleSec}`);
      } else {
        this.report(symbol, notes, problems, 'live sigma');
        return volRegimeFromMinuteSigma(sigma.data);
      }
    }
    if (legacy.sigma !== undefined) {
      const sigma = legacyShape.sigma.safeParse(legacy.sigma);
      if (sigma.success && sigma.data !== undefined) {
        this.report(symbol, notes, problems, 'legacy sigma');
        return volRegimeFromSigma(sigma.data);
      }
      notes.push(`invalid sigma ${JSON.stringify(legacy.sigma)}`);
    }
    if (notes.length === 0) notes.push('no vol_regime or sigma');
    this.report(symbol, notes, problems, String(DEFAULT_VOL_REGIME));
    return DEFAULT_VOL_REGIME;
  }

  /** A fallback is counted once per symbol, naming everything that was passed over. */
  private report(symbol: string, notes: string[], problems: InputProblem<Labels>[], using: string): void {
    if (notes.length > 0) problems.push({ inputType: 'vol_regime', subject: symbol, detail: `${notes.join(', ')}; using ${using}` });
  }
}

function clusterOf(symbol: string, legacy: Record<string, string>, problems: InputProblem<Labels>[]): string {
  const field = MarketStateHash.shape.cluster_id.safeParse(legacy.cluster_id);
  if (!field.success) {
    problems.push({ inputType: 'cluster_stress', subject: symbol, detail: `invalid cluster_id ${JSON.stringify(legacy.cluster_id)}; using ${DEFAULT_CLUSTER_ID}` });
    return DEFAULT_CLUSTER_ID;
  }
  return field.data ?? DEFAULT_CLUSTER_ID;
}

type MarketSettings = { keys: RedisKeys; marketStateStaleSec: number };

export const marketStateSource = {
  name: 'market_state',
  scope: 'symbol',
  staleLabels: ['vol_regime', 'cluster_stress'],
  create: (s: MarketSettings) => new MarketStateSource({ live: s.keys.marketStates, legacy: s.keys.legacyMarketStates, staleSec: s.marketStateStaleSec }),
} as const satisfies SymbolSourceDef<MarketInput, Labels, MarketSettings>;
