import { z } from 'zod';
import { ClusterId } from './symbol';
import { epochSecondsString, integerString, numericString } from './wire-number';

/**
 * Input hashes written by other services of the trading system. The worker only reads them.
 * Every schema takes the raw HGETALL result (all strings) and yields typed, finite numbers.
 */

/**
 * `quantum:state:portfolio`, as the portfolio state publisher writes it every 5 s (TTL 120 s).
 * Zero equity is accepted: it clamps budgets to the minimum. `positions_count` (every key of the
 * positions family, flat ones included) and `positions_notional_usd` (sum of |amt * mark|) let the
 * worker tell an incomplete positions feed from a flat book.
 */
export const PortfolioStateHash = z.object({
  equity_usd: numericString({ min: 0 }),
  drawdown: numericString().optional(),
  timestamp: epochSecondsString,
  positions_count: integerString({ min: 0 }).optional(),
  positions_notional_usd: numericString({ min: 0 }).optional(),
});
export type PortfolioStateHash = z.infer<typeof PortfolioStateHash>;

/**
 * A position hash of either family: `quantum:state:positions:<SYMBOL>` as the P3.3 position state
 * brain writes it (`position_amt`, `side` LONG/SHORT/FLAT, `quantity`, `entry_price`, `mark_price`,
 * `ts_epoch`, ..., with a TTL; its numbers are Python's `str(float)`, so `0.0`, `-0.5` and `1e-05`),
 * or the legacy `quantum:position:snapshot:<SYMBOL>`. A price of 0 (a flat position) means no
 * price. `ts_epoch` (or a legacy `timestamp`) is when the position was read from the exchange.
 */
export const PositionSnapshotHash = z
  .object({
    position_amt: numericString(),
    entry_price: numericString({ min: 0 }).optional(),
    mark_price: numericString({ min: 0 }).optional(),
    side: z.string().optional(),
    ts_epoch: epochSecondsString.optional(),
    timestamp: epochSecondsString.optional(),
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
  if (snapshot.mark_price !== undefined && snapshot.mark_price > 0) return snapshot.mark_price;
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

/**
 * `quantum:marketstate:<SYMBOL>`, as the market state publisher writes it (every 60 s, TTL 600 s):
 * `sigma` is a robust EWMA (lambda 0.94, winsorised, blended with MAD) of 1-minute log returns over
 * the last 256 candles, `ts_timestamp` the epoch second it was computed. Regime probabilities and
 * the rest are not needed for a budget.
 */
export const LiveMarketStateHash = z.object({
  sigma: numericString({ min: 0 }).optional(),
  ts_timestamp: epochSecondsString.optional(),
});
export type LiveMarketStateHash = z.infer<typeof LiveMarketStateHash>;

/**
 * The guide's sigma bands read as hourly volatility, and the publisher's sigma is per 1-minute
 * return: sqrt(60) minutes make an hour under a random walk, so each band is divided by sqrt(60).
 */
export const MINUTES_PER_SIGMA_HORIZON = 60;
const MINUTE_SCALE = Math.sqrt(MINUTES_PER_SIGMA_HORIZON);
/** The bands of `volRegimeFromMinuteSigma`, in units of 1-minute sigma. */
export const MINUTE_SIGMA_BANDS = Object.freeze({
  extremeAbove: 0.03 / MINUTE_SCALE,
  highAbove: 0.02 / MINUTE_SCALE,
  lowBelow: 0.005 / MINUTE_SCALE,
});

/**
 * Maps the market state publisher's sigma (1-minute returns) to a regime level: above 0.00387
 * (3 % an hour) EXTREME, above 0.00258 (2 % an hour) HIGH, below 0.000645 (0.5 % an hour) LOW,
 * else NORMAL. Read with the guide's bands as they stand, a 1-minute sigma is almost always below
 * 0.005 and every symbol would look LOW (no volatility stress at all).
 */
export function volRegimeFromMinuteSigma(sigma: number): number {
  if (sigma > MINUTE_SIGMA_BANDS.extremeAbove) return VOL_REGIME_LEVELS.EXTREME;
  if (sigma > MINUTE_SIGMA_BANDS.highAbove) return VOL_REGIME_LEVELS.HIGH;
  if (sigma < MINUTE_SIGMA_BANDS.lowBelow) return VOL_REGIME_LEVELS.LOW;
  return VOL_REGIME_LEVELS.NORMAL;
}

/** Maps a legacy market hash's sigma to a regime level with the guide's bands: >0.03 EXTREME, >0.02 HIGH, <0.005 LOW. */
export function volRegimeFromSigma(sigma: number): number {
  if (sigma > 0.03) return VOL_REGIME_LEVELS.EXTREME;
  if (sigma > 0.02) return VOL_REGIME_LEVELS.HIGH;
  if (sigma < 0.005) return VOL_REGIME_LEVELS.LOW;
  return VOL_REGIME_LEVELS.NORMAL;
}
