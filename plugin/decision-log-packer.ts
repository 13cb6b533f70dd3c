import type { CapturedDecision, DecisionLogEncoder } from './decision-log-encoding';

/** Time spent packing per turn of the event loop at most, in ms (looked at every 16 entries). */
export const PACK_BUDGET_MS = 0.5;
const PACK_STEP = 16;

/**
 * The decisions the log has taken and not yet packed. A decision is taken on its path (a copy,
 * `captureDecision`) and packed after its caller has its answer (`setImmediate`), for at most
 * `PACK_BUDGET_MS` a turn of the event loop, so that a burst of packing never holds up the next
 * decision's reply for long, and a steady stream of decisions is packed as fast as it comes.
 */
export class DecisionPacker {
  private readonly captured: CapturedDecision[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  /**
   * @param into the log's queue of packed entries
   * @param packed called after each turn of packing (the log schedules its write)
   * @param failed called for an entry that could not be packed (counted as not written)
   */
  constructor(
    private readonly encoder: DecisionLogEncoder,
    private readonly into: string[],
    private readonly packed: () => void,
    private readonly failed: () => void,
  ) {}

  /** Taken decisions waiting to be packed. */
  get length(): number {
    return this.captured.length;
  }

  add(entry: CapturedDecision): void {
    this.captured.push(entry);
    this.scheduled ??= setImmediate(this.run).unref();
  }

  /** Packs every taken decision at once (the log is closing). */
  packAll(): void {
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const entry of this.captured.splice(0)) this.packOne(entry);
  }

  private readonly run = (): void => {
    this.scheduled = undefined;
    const until = performance.now() + PACK_BUDGET_MS;
    do {
      for (const entry of this.captured.splice(0, PACK_STEP)) this.packOne(entry);
    } while (this.captured.length > 0 && performance.now() < until);
    if (this.captured.length > 0) this.scheduled = setImmediate(this.run).unref();
    this.packed();
  };

  private packOne(entry: CapturedDecision): void {
    try {
      this.into.push(this.encoder.pack(entry));
    } catch {
      // Nothing a decision holds should make packing throw; if it ever does, the entry is counted, never thrown at the host.
      this.failed();
    }
  }
}
