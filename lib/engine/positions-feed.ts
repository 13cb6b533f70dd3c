/**
 * Whether the positions feed agrees with the portfolio state. The portfolio state publisher counts
 * every key of the positions family (`positions_count`) and sums |amt * mark|
 * (`positions_notional_usd`) every few seconds; when the keys the worker sees show fewer positions,
 * or clearly less notional, some position is missing from the keys, and a symbol that reads as flat
 * may in truth be held. A missing position is never taken for a flat one.
 */

/** How much less notional than the portfolio state counts the keys may show before the feed is incomplete. */
export const POSITIONS_FEED_DEFAULTS = Object.freeze({
  /** Share of `positions_notional_usd`, in percent: prices move between the publisher's read and ours. */
  notionalTolerancePct: 5,
  /** And at least this many USD, so that dust never counts. */
  notionalToleranceUsd: 1,
});

export interface PositionsFeedFacts {
  /** `positions_count` of a fresh portfolio state; undefined when it has none. */
  portfolioCount: number | undefined;
  /** `positions_notional_usd` of a fresh portfolio state; undefined when it has none. */
  portfolioNotionalUsd: number | undefined;
  /** Keys of the canonical positions family read this cycle (flat ones included, as the publisher counts them). */
  keysSeen: number;
  /** Sum of |position_amt * mark_price| over those keys, as the publisher sums it. */
  notionalSeenUsd: number;
}

export type PositionsFeedVerdict = { complete: true } | { complete: false; problem: string };

/** The verdict on one cycle's positions feed; a portfolio state without the counts says nothing against it. */
export function judgePositionsFeed(facts: PositionsFeedFacts, tolerancePct: number = POSITIONS_FEED_DEFAULTS.notionalTolerancePct): PositionsFeedVerdict {
  const { portfolioCount, portfolioNotionalUsd, keysSeen, notionalSeenUsd } = facts;
  if (portfolioCount !== undefined && keysSeen < portfolioCount) {
    return { complete: false, problem: `the portfolio state counts ${portfolioCount} positions, the position keys show ${keysSeen}` };
  }
  if (portfolioNotionalUsd !== undefined) {
    const tolerance = Math.max(POSITIONS_FEED_DEFAULTS.notionalToleranceUsd, (portfolioNotionalUsd * tolerancePct) / 100);
    if (portfolioNotionalUsd - notionalSeenUsd > tolerance) {
      return {
        complete: false,
        problem: `the portfolio state counts ${round(portfolioNotionalUsd)} USD of positions, the position keys show ${round(notionalSeenUsd)} USD`,
      };
    }
  }
  return { complete: true };
}

const round = (x: number): number => Math.round(x * 100) / 100;
