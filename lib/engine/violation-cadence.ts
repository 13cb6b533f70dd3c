/** What a violation says that makes it news when it changes. */
export interface Announcement {
  overBudgetUsd: number;
  budgetUsd: number;
  /** The mode written with it: a switch to enforce is news to readers of the stream. */
  mode: string;
}

/** An announcement on the violation stream, and when it was made. */
export interface AnnouncedViolation extends Announcement {
  /** Epoch ms. */
  atMs: number;
}

/** Relative change of the over-budget amount or the budget that makes a violation news at once. */
export const VIOLATION_CHANGE_RATIO = 0.01;

const movedBy = (from: number, to: number): number => (from === 0 ? (to === 0 ? 0 : Infinity) : Math.abs(to - from) / Math.abs(from));

/**
 * Whether a symbol over budget is announced on the violation stream this cycle: when it has just
 * gone over (nothing announced since it was last within budget), when its over-budget amount or its
 * budget moved by more than 1 % (or its mode changed) since the last announcement, or when
 * `republishMs` has passed since then. Readers that look back a fixed window (30 s) keep seeing a
 * lasting violation, without an entry per cycle per symbol.
 */
export function violationDue(last: AnnouncedViolation | undefined, now: Announcement, nowMs: number, republishMs: number): boolean {
  if (last === undefined) return true;
  if (movedBy(last.overBudgetUsd, now.overBudgetUsd) > VIOLATION_CHANGE_RATIO) return true;
  if (movedBy(last.budgetUsd, now.budgetUsd) > VIOLATION_CHANGE_RATIO) return true;
  if (last.mode !== now.mode) return true;
  return nowMs - last.atMs >= republishMs;
}

/**
 * The announcements a leader has made, per symbol, to apply `violationDue` cycle after cycle. A
 * symbol that is within budget (or gone) is forgotten, so going over again is news. Held in memory
 * only: a new leader announces every current violation once, which readers take as a repeat.
 */
export class ViolationCadence {
  private readonly announced = new Map<string, AnnouncedViolation>();

  constructor(private readonly republishMs: number) {}

  /** Whether `symbol`, over budget now, is to be announced. */
  due(symbol: string, now: Announcement, nowMs: number): boolean {
    return violationDue(this.announced.get(symbol), now, nowMs, this.republishMs);
  }

  /** Records an announcement that reached the stream. */
  record(symbol: string, now: Announcement, nowMs: number): void {
    this.announced.set(symbol, { ...now, atMs: nowMs });
  }

  /** Forgets every symbol not in `overBudget`. */
  retain(overBudget: ReadonlySet<string>): void {
    for (const symbol of this.announced.keys()) if (!overBudget.has(symbol)) this.announced.delete(symbol);
  }
}
