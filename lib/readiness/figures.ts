/** How readiness items word and bound their figures. */

/** A fraction as a percentage with two decimals: `1.25 %`. */
export const pct = (x: number): string => `${(Math.round(x * 10000) / 100).toString()} %`;

/** `n` of `of` as a fraction; 0 of nothing is 0. */
export const share = (n: number, of: number): number => (of === 0 ? 0 : n / of);

/** `1 cycle`, `3 cycles`. */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Most examples an item lists or keeps for its details. */
export const TOP = 10;
