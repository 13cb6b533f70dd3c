import { readRecordedCycle, type RecordedCycle } from '../../types/cycle-history-entry';
import { readLoggedDecision, type LoggedDecision } from '../../types/decision-log-entry';
import { listBudgets } from '../redis/budget-listing';
import type { RedisClient } from '../redis/client';
import type { RedisKeys } from '../redis/keys';
import type { ReadinessContext } from './context';
import { DecisionTally } from './decision-tally';
import type { ReadinessFacts, ViolationSeen } from './facts';
import { judgeReadiness } from './readiness';
import type { ReadinessReport } from './report';

/**
 * The Redis side of readiness and replay: the streams read over a window, page by page (XRANGE
 * COUNT), so a million decisions are never held at once. Every read is of one key, so it works on
 * Redis Cluster as on a single server. Entries are selected by their stream id (Redis's clock).
 */

export const HISTORY_READ_DEFAULTS = Object.freeze({
  /** Entries per XRANGE page. */
  pageEntries: 5000,
});

type StreamPage = Array<[id: string, fields: string[]]>;

/** Calls `onPage` with every page of `key`'s entries whose ids lie in [fromMs, toMs]. */
async function forEachPage(client: RedisClient, key: string, fromMs: number, toMs: number, onPage: (page: StreamPage) => void): Promise<void> {
  let start = `${Math.max(0, Math.floor(fromMs))}-0`;
  const end = String(Math.floor(toMs));
  for (;;) {
    const page = (await client.xrange(key, start, end, 'COUNT', HISTORY_READ_DEFAULTS.pageEntries)) as StreamPage;
    if (page.length === 0) return;
    onPage(page);
    if (page.length < HISTORY_READ_DEFAULTS.pageEntries) return;
    start = nextId(page[page.length - 1]![0]);
  }
}

const idMs = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/** The smallest stream id after `id` (the exclusive `(id` form of XRANGE needs Redis 6.2). */
function nextId(id: string): string {
  const dash = id.indexOf('-');
  return `${id.slice(0, dash)}-${BigInt(id.slice(dash + 1)) + 1n}`;
}

/** The cycles recorded in the window, oldest first, and the latest one before it. */
export async function readCycles(client: RedisClient, keys: RedisKeys, fromMs: number, toMs: number): Promise<{ cycles: RecordedCycle[]; before?: RecordedCycle }> {
  const cycles: RecordedCycle[] = [];
  await forEachPage(client, keys.cycleHistoryStream, fromMs, toMs, (page) => {
    for (const [id, fields] of page) {
      const cycle = readRecordedCycle(id, fields);
      if (cycle) cycles.push(cycle);
    }
  });
  const previous = fromMs > 0 ? ((await client.xrevrange(keys.cycleHistoryStream, String(Math.floor(fromMs) - 1), '-', 'COUNT', 1)) as StreamPage) : [];
  const before = previous[0] ? readRecordedCycle(previous[0][0], previous[0][1]) : undefined;
  return before ? { cycles, before } : { cycles };
}

/**
 * Calls `onDecision` for every logged decision in the window, oldest first; resolves to the
 * entries read and those that were not decisions of a known format.
 */
export async function forEachDecision(
  client: RedisClient,
  keys: RedisKeys,
  fromMs: number,
  toMs: number,
  onDecision: (decision: LoggedDecision) => void,
): Promise<{ read: number; unreadable: number }> {
  const counts = { read: 0, unreadable: 0 };
  await forEachPage(client, keys.decisionLogStream, fromMs, toMs, (page) => {
    for (const [id, fields] of page) {
      counts.read += 1;
      const decision = readLoggedDecision(id, fields);
      if (decision) onDecision(decision);
      else counts.unreadable += 1;
    }
  });
  return counts;
}

/** Every violation stream entry in the window: symbol and time. */
export async function readViolations(client: RedisClient, keys: RedisKeys, fromMs: number, toMs: number): Promise<ViolationSeen[]> {
  const out: ViolationSeen[] = [];
  await forEachPage(client, keys.violationStream, fromMs, toMs, (page) => {
    for (const [id, fields] of page) {
      const at = fields.indexOf('symbol');
      if (at >= 0 && at % 2 === 0 && fields[at + 1]) out.push({ symbol: fields[at + 1]!, tsMs: idMs(id) });
    }
  });
  return out;
}

/** Reads everything readiness needs for the window ending at `ctx.nowMs` and judges it. */
export async function evaluateReadiness(client: RedisClient, keys: RedisKeys, ctx: ReadinessContext): Promise<ReadinessReport> {
  const fromMs = ctx.nowMs - ctx.windowMs;
  const [{ cycles, before }, violations, budgets, modeOverride] = await Promise.all([
    readCycles(client, keys, fromMs, ctx.nowMs),
    readViolations(client, keys, fromMs, ctx.nowMs),
    listBudgets(client, keys),
    client.get(keys.modeOverride),
  ]);
  const decisions = new DecisionTally(ctx, cycles);
  await forEachDecision(client, keys, fromMs, ctx.nowMs, (d) => decisions.add(d));
  const facts: ReadinessFacts = { cycles, decisions, violations, budgets: budgets.map((b) => b.fields), modeOverride };
  if (before) facts.cycleBeforeWindow = before;
  return judgeReadiness(facts, ctx);
}
