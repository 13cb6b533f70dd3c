import { performance } from 'node:perf_hooks';

export const EVENT_LOOP_SLICE_DEFAULTS = Object.freeze({
  /**
   * Longest stretch (ms) a cycle's own loop runs before it lets the event loop serve what waits:
   * HTTP decisions of the same process, Redis replies, timers. A decision that arrives while the
   * cycle computes waits at most about this long for its turn, instead of the whole cycle's CPU
   * (hundreds of milliseconds at 20,000 symbols).
   */
  sliceMs: 4,
  /** Items between two looks at the clock (a clock read costs more than one small item). */
  checkEvery: 64,
});

/** Resolves after the event loop has run its pending I/O callbacks and timers once. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * `items.forEach(fn)` in bounded slices: after every `sliceMs` of work it yields to the event loop,
 * so the cycle's CPU work never holds it for longer than a slice. `fn` runs in order, once per item.
 */
export async function forEachInSlices<T>(items: readonly T[], fn: (item: T, index: number) => void, sliceMs: number = EVENT_LOOP_SLICE_DEFAULTS.sliceMs): Promise<void> {
  const every = EVENT_LOOP_SLICE_DEFAULTS.checkEvery;
  let sliceStarted = performance.now();
  for (let i = 0; i < items.length; i++) {
    fn(items[i]!, i);
    if (i % every === every - 1 && performance.now() - sliceStarted > sliceMs) {
      await yieldToEventLoop();
      sliceStarted = performance.now();
    }
  }
}
