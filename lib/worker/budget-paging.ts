export const BUDGET_PAGING_DEFAULTS = Object.freeze({
  /**
   * Listings served at once; more get 429 with Retry-After. Each one SCANs the budget keys and
   * reads a page of hashes: a handful in parallel is plenty for operators and dashboards, and a
   * flood of them must not take the worker's memory or the cycle's Redis time.
   */
  maxConcurrentListings: 2,
});

/** At most `maxConcurrentListings` listings in flight; the next one is refused with `tooMany`. */
export class ListingLimiter {
  private inFlight = 0;

  constructor(
    private readonly tooMany: (body: { error: string; message: string }) => Error,
    private readonly max: number = BUDGET_PAGING_DEFAULTS.maxConcurrentListings,
  ) {}

  async run<T>(list: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.max) throw this.tooMany({ error: 'too_many_requests', message: `at most ${this.max} budget listings at once; retry in a second` });
    this.inFlight += 1;
    try {
      return await list();
    } finally {
      this.inFlight -= 1;
    }
  }
}
