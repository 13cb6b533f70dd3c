import { ViolationCadence, type Announcement } from '../../engine/violation-cadence';
import type { ViolationEvent } from '../../../types/violation-event';
import type { CycleContext } from './cycle-context';

const announcementOf = (v: ViolationEvent): Announcement => ({ overBudgetUsd: v.over_budget, budgetUsd: v.budget_usd, mode: v.mode });

/**
 * The violations step: of the computed writes, keeps only the violations due on the stream this
 * cycle (`ViolationCadence`: a new one at once, a lasting one every VIOLATION_REPUBLISH_SEC, a change
 * of more than 1 % at once), and after the write remembers those that reached the stream.
 */
export class ViolationsStep {
  private readonly cadence: ViolationCadence;

  constructor(republishSec: number) {
    this.cadence = new ViolationCadence(republishSec * 1000);
  }

  /** Sets `ctx.announce`: the writes, with only the violations due this cycle. */
  run(ctx: CycleContext): void {
    const over = new Set<string>();
    ctx.announce = ctx.writes.map((write) => {
      if (!write.violation) return write;
      over.add(write.record.symbol);
      if (!this.cadence.due(write.record.symbol, announcementOf(write.violation), ctx.nowMs)) return { record: write.record };
      return write;
    });
    this.cadence.retain(over);
  }

  /** Records the violations the write step published (`ctx.published`), so they are due again only by the cadence. */
  recordPublished(ctx: CycleContext): void {
    for (const write of ctx.announce) {
      if (!write.violation || !ctx.published.has(write.record.symbol)) continue;
      this.cadence.record(write.record.symbol, announcementOf(write.violation), ctx.nowMs);
    }
  }
}
