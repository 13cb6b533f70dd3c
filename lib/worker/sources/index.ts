import type { WorkerConfig } from '../../config';
import type { SymbolInputs } from '../../engine/budget-record';
import type { RedisKeys } from '../../redis/keys';
import { clusterStressSource } from './cluster-stress-source';
import { heatSource, type HeatReader } from './heat-source';
import type { InputSourceDef, PortfolioInputRead } from './input-source';
import { marketStateSource } from './market-state-source';
import { portfolioStateSource } from './portfolio-state-source';
import { positionSource } from './position-source';

/**
 * Every input of the cycle, one source each. The reader runs over this list by scope: the
 * portfolio-wide ones in the cycle's first read, the per-symbol ones for every symbol of the
 * universe, the per-cluster ones for every cluster those name. The order is the order of reading
 * within a scope, and of the `p28_stale_input_total` labels.
 */
export const INPUT_SOURCES = [portfolioStateSource, heatSource, positionSource, marketStateSource, clusterStressSource] as const;

/**
 * The configuration the sources' freshness and fallback rules read, with the defaults of
 * `CONFIG_VARIABLES` (for a reader built without a configuration, as in tests).
 */
export const SOURCE_LIMIT_DEFAULTS = Object.freeze({
  /** STALE_SEC, for the portfolio state. */
  staleSec: 30,
  /** MAX_LKG_AGE_SEC, for the portfolio state and cluster stress. */
  maxLkgAgeSec: 900,
  /** POSITION_STALE_SEC. */
  positionStaleSec: 60,
  /** POSITIONS_FEED_TOLERANCE_PCT. */
  positionsFeedTolerancePct: 5,
  /** MARKET_STATE_STALE_SEC: ten publishing intervals of the market state publisher, its own TTL. */
  marketStateStaleSec: 600,
}) satisfies Partial<WorkerConfig>;
export type SourceLimits = Pick<WorkerConfig, keyof typeof SOURCE_LIMIT_DEFAULTS>;

/** What the sources are built from: the worker's key names, its heat reader and its limits. */
export type SourceSettings = SourceLimits & { keys: RedisKeys; heat: HeatReader };

/** The limits of `config` (defaults where it has none). */
export function sourceLimitsOf(config: Partial<SourceLimits>): SourceLimits {
  const limits: SourceLimits = { ...SOURCE_LIMIT_DEFAULTS };
  for (const name of Object.keys(limits) as (keyof SourceLimits)[]) limits[name] = config[name] ?? limits[name];
  return limits;
}

export type InputSource = InputSourceDef<SourceSettings, StaleInputLabel>;
type Listed = (typeof INPUT_SOURCES)[number];

/** The `p28_stale_input_total{input_type}` values the sources count under. */
export type StaleInputLabel = Listed['staleLabels'][number];

/** The value of each portfolio-wide input, by source name, as `PortfolioReader.readHead` returns them. */
export type PortfolioInputs = {
  [D in Extract<Listed, { scope: 'portfolio' }> as D['name']]: ReturnType<D['create']> extends PortfolioInputRead<infer V, string> ? V : never;
};

/** Every label of the sources, each once, in list order. */
export function staleLabelsOf(sources: readonly { staleLabels: readonly string[] }[]): string[] {
  return [...new Set(sources.flatMap((s) => s.staleLabels))];
}

// Compile-time check: the per-symbol and per-cluster sources fill every field of `SymbolInputs`.
type Filled = ReturnType<ReturnType<Extract<Listed, { scope: 'symbol' | 'cluster' }>['create']>['judge']>;
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type Missing = Exclude<keyof SymbolInputs, 'symbol' | keyof Intersection<Filled>>;
const everyFieldFilled: [Missing] extends [never] ? true : Missing = true;
void everyFieldFilled;
