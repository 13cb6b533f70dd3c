import type { PortfolioStateHash } from '../../../types/inputs';
import type { SymbolInputs } from '../../engine/budget-record';
import type { PositionsFeedVerdict } from '../../engine/positions-feed';
import type { BatchOutcome, RedisCommand } from '../../redis/command-batch';
import type { KeyFamily } from '../../redis/keys';
import type { Discovery } from './family-index';
import type { InputProblem } from './input-problem';

/**
 * How often, and for what, an input is read. `portfolio`: once per cycle. `symbol`: once per symbol
 * of the universe, from the keys its families' SCAN found. `cluster`: once per cluster named by a
 * symbol's `clusterId` (another input's field).
 */
export type InputScope = 'portfolio' | 'symbol' | 'cluster';

/** A symbol's inputs while they are being read: the symbol, and the fields its sources have filled so far. */
export type SymbolDraft = Pick<SymbolInputs, 'symbol'> & Partial<SymbolInputs>;

/** What a cycle's reading of a portfolio-wide input needs of the portfolio-wide inputs read before. */
export interface SymbolsReviewContext {
  /** The fresh portfolio state; undefined when the cycle runs on a last-known-good one. */
  portfolio: PortfolioStateHash | undefined;
}

/** What a rule across every symbol's input found (the positions feed held against the portfolio state). */
export interface SymbolsReview {
  positionsFeed?: PositionsFeedVerdict;
}

/**
 * A portfolio-wide input, read once per cycle. Its Redis reads go out in the cycle's first batch;
 * an input read elsewhere (an HTTP fetch) returns none and starts its own read when `read` is called,
 * which is alongside that batch.
 */
export interface PortfolioInputRead<V, L extends string> {
  commands(): RedisCommand[];
  /** This cycle's value from the outcomes of `commands()`, its fallback (if any) pushed on `problems`. */
  read(outcomes: Promise<readonly BatchOutcome[]>, nowMs: number, problems: InputProblem<L>[]): Promise<V>;
}

/** A per-symbol input: key families found by SCAN, then one read per key of each symbol of the universe. */
export interface SymbolInputRead<V, L extends string> {
  /** Its key families, in the order `discover` takes their SCAN results. */
  readonly families: readonly KeyFamily[];
  /** Whether a symbol with a key of this input gets a budget: `held` (a position), `tracked` (a market state), or `none`. */
  readonly universe: 'held' | 'tracked' | 'none';
  /** The label under which a key naming no symbol is skipped and counted; undefined: such keys are not this input's concern. */
  readonly invalidKeyLabel: L | undefined;
  /** Takes the keys SCAN found in each family; returns the symbols found. */
  discover(keysByFamily: readonly (readonly string[])[]): Discovery;
  /** Called once per cycle before the first `judge`. */
  beginCycle?(): void;
  commands(symbol: string): RedisCommand[];
  /** The fields of `SymbolInputs` this input fills, from the outcomes of `commands(symbol)` in the same order. */
  judge(symbol: string, outcomes: readonly BatchOutcome[], nowSec: number, problems: InputProblem<L>[]): V;
  /** A rule across every symbol's inputs, once all are judged (may amend the drafts). */
  review?(drafts: SymbolDraft[], context: SymbolsReviewContext, problems: InputProblem<L>[]): SymbolsReview;
}

/** A per-cluster input, read once for each cluster id the symbols name. */
export interface ClusterInputRead<V, L extends string> {
  commands(clusterId: string): RedisCommand[];
  /** The fields of `SymbolInputs` this input fills for every symbol of the cluster. */
  judge(clusterId: string, outcomes: readonly BatchOutcome[], nowSec: number, problems: InputProblem<L>[]): V;
}

interface Declared<S extends InputScope, L extends string> {
  /** The input's name, as the docs and the logs call it. */
  readonly name: string;
  readonly scope: S;
  /** The `p28_stale_input_total{input_type}` values its fallbacks are counted under. */
  readonly staleLabels: readonly L[];
}

/**
 * One input as the cycle reads it: its declaration and how to build its reader from the worker's
 * settings (`Settings`: the part of `SourceSettings` it needs). A source keeps state across cycles
 * (its last-known-good value), so the reader builds one per worker.
 */
export interface PortfolioSourceDef<V, L extends string, Settings> extends Declared<'portfolio', L> {
  create(settings: Settings): PortfolioInputRead<V, L>;
}
export interface SymbolSourceDef<V extends Partial<SymbolInputs>, L extends string, Settings> extends Declared<'symbol', L> {
  create(settings: Settings): SymbolInputRead<V, L>;
}
export interface ClusterSourceDef<V extends Partial<SymbolInputs>, L extends string, Settings> extends Declared<'cluster', L> {
  create(settings: Settings): ClusterInputRead<V, L>;
}

export type InputSourceDef<Settings, L extends string = string> =
  | PortfolioSourceDef<unknown, L, Settings>
  | SymbolSourceDef<Partial<SymbolInputs>, L, Settings>
  | ClusterSourceDef<Partial<SymbolInputs>, L, Settings>;
