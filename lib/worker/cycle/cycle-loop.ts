import { performance } from 'node:perf_hooks';
import type { CycleReport } from '../cycle-report';

/**
 * The worker's loop: one cycle now, then one every interval, measured start to start. Cycles never
 * overlap: a cycle asked for while one runs is that one, and a cycle longer than the interval is
 * followed at once by the next.
 */
export class CycleLoop {
  private inFlight: Promise<CycleReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private looping = false;

  constructor(
    private readonly cycle: () => Promise<CycleReport>,
    private readonly intervalMs: number,
  ) {}

  /** Runs one cycle now; while one is running, returns that one instead of starting another. */
  runOnce(): Promise<CycleReport> {
    this.inFlight ??= this.cycle().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Starts the loop; a second call while it runs does nothing. */
  start(): void {
    if (this.looping) return;
    this.looping = true;
    const tick = async (): Promise<void> => {
      const started = performance.now();
      await this.runOnce();
      if (!this.looping) return;
      // A cycle longer than the interval is followed at once by the next, never overlapped by it.
      this.timer = setTimeout(() => void tick(), Math.max(0, this.intervalMs - (performance.now() - started)));
    };
    this.timer = setTimeout(() => void tick(), 0);
  }

  /** Stops the loop and lets a running cycle finish. */
  async stop(): Promise<void> {
    this.looping = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) await this.inFlight;
  }
}
