import { z } from 'zod';
import { ClusterId } from './symbol';
import { epochSecondsString, numericString } from './wire-number';

/**
 * Input hashes written by other services of the trading system. The worker only reads them.
 * Every schema takes the raw HGETALL result (all strings) and yields typed, finite numbers.
 */

/** `quantum:state:portfolio`. Zero equity is accepted: it clamps budgets to the minimum. */
export const PortfolioStateHash = z.object({
  equity_usd: numericString({ min: 0 }),
  drawdown: numericString().optional(),
  timestamp: epochSecondsString,
});
export type PortfolioStateHash = z.infer<typeof PortfolioStateHash>;

/** `quantum:position:snapshot:<SYMBOL>`. A symbol is active while `position_amt` != 0. */
export const PositionSnapshotHash = z
  .object({
    position_amt: numericString(),
    entry_price: numericString({ min: 0 }).optional(),
    mark_price: numericString({ min: 0, exclusiveMin: true }).optional(),
    side: z.string().optional(),
  })
  .superRefine((value, ctx) => {
    if (value.position_amt !== 0 && positionPrice(value) === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['entry_price'],
        message: 'an open position needs mark_price or a positive entry_price',
      });
    }
  });
export type PositionSnapshotHash = z.infer<typeof PositionSnapshotHash>;

/** The price a position's notional is measured at: mark price when known, else entry price. */
export function positionPrice(snapshot: {
  entry_price?: number | undefined;
  mark_price?: number | undefined;
}): number | undefined {
  if (snapshot.mark_price !== undefined) return snapshot.mark_price;
  if (snapshot.entry_price !== undefined && snapshot.entry_price > 0) return snapshot.entry_price;
  return undefined;
}

/** `quantum:cluster:stress:<cluster_id>`. */
export const ClusterStressHash = z.object({
  stress: numericString({ min: 0, max: 1 }),
});
export type ClusterStressHash = z.infer<typeof ClusterStressHash>;

/** Named volatility regimes and the stress contribution each one stands for. */
export const VOL_REGIME_LEVELS = { LOW: 0, NORMAL: 0.33, HIGH: 0.67, EXTREME: 1.0 } as const;
export type VolRegimeName = keyof typeof VOL_REGIME_LEVELS;
/** The level used when a symbol's market state says nothing about volatility. */
export const DEFAULT_VOL_REGIME = VOL_REGIME_LEVELS.NORMAL;

/**
 * A regime name as the live system writes it: LOW, NORMAL, HIGH or EXTREME, optionally followed by
 * `_VOL` and a further `_suffix` (`HIGH_VOL`, `EXTREME_VOL`, `high_vol_trending`), any case.
 */
const REGIME_NAME_PATTERN = /^(LOW|NORMAL|HIGH|EXTREME)(?:_VOL(?:_[A-Z0-9]+)*)?$/;

/** The level of a regime name, or undefined when `raw` is not one. */
export function volRegimeLevel(raw: string): number | undefined {
  const match = REGIME_NAME_PATTERN.exec(raw.trim().toUpperCase());
  return match ? VOL_REGIME_LEVELS[match[1] as VolRegimeName] : undefined;
}

const namedRegime = z.string().transform((raw, ctx) => {
  const level = volRegimeLevel(raw);
  if (level === undefined) {
    ctx.addIssue({ code: 'custom', message: 'not a regime name' });
    return z.NEVER;
  }
  return level;
});

/** `vol_regime`: LOW|NORMAL|HIGH|EXTREME[_VOL[_suffix]] (any case), or a number in [0,1] taken as is. */
export const VolRegimeField = z.union([namedRegime, numericString({ min: 0, max: 1 })], {
  error: (issue) =>
    `expected LOW, NORMAL, HIGH or EXTREME (optionally with _VOL and a _suffix) or a number in [0,1], got ${JSON.stringify(issue.input)}`,
});

/** `quantum:state:market:<SYMBOL>`. */
export const MarketStateHash = z.object({
  vol_regime: VolRegimeField.optional(),
  sigma: numericString({ min: 0 }).optional(),
  cluster_id: ClusterId.optional(),
});
export type MarketStateHash = z.infer<typeof MarketStateHash>;

/**
 * The volatility regime of a parsed market hash: the named or numeric `vol_regime` first, else
 * the `sigma` bands, else NORMAL. Returns where the value came from so fallbacks can be counted.
 */
export function volRegimeOf(market: MarketStateHash | undefined): {
  value: number;
  source: 'vol_regime' | 'sigma' | 'default';
} {
  if (market?.vol_regime !== undefined) return { value: market.vol_regime, source: 'vol_regime' };
  if (market?.sigma !== undefined) return { value: volRegimeFromSigma(market.sigma), source: 'sigma' };
  return { value: DEFAULT_VOL_REGIME, source: 'default' };
}

/** Maps a realised volatility (sigma) to a regime level: >0.03 EXTREME, >0.02 HIGH, <0.005 LOW. */
export function volRegimeFromSigma(sigma: number): number {
  if (sigma > 0.03) return VOL_REGIME_LEVELS.EXTREME;
  if (sigma > 0.02) return VOL_REGIME_LEVELS.HIGH;
  if (sigma < 0.005) return VOL_REGIME_LEVELS.LOW;
  return VOL_REGIME_LEVELS.NORMAL;
}
