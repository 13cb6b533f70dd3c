import { expect } from 'chai';
import { DecisionTally, judgeReadiness, violationOnsets, type ReadinessContext, type ReadinessFacts, type ReadinessItemId, type ViolationSeen } from '../../../lib/readiness/readiness';
import { renderLedger, renderReadiness } from '../../../lib/readiness/render';
import { parseWindow, WindowError } from '../../../lib/readiness/window';
import { encodeBudgetHash } from '../../../types/budget-hash';
import type { RecordedCycle } from '../../../types/cycle-history-entry';
import type { LoggedDecision } from '../../../types/decision-log-entry';
import { budgetFixture } from '../../support/budget-fixture';

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;
const ctx: ReadinessContext = {
  nowMs: NOW,
  windowMs: HOUR,
  params: { baseRiskPct: 0.02, alphaHeat: 0.4, betaCluster: 0.4, gammaVol: 0.2, minBudgetUsd: 500, maxBudgetUsd: 10000 },
  configuredMode: 'shadow',
  maxLeaderGapMs: 15000,
  violationRepublishMs: 10000,
  computeIntervalMs: 5000,
};

function cycle(tsMs: number, overrides: Partial<RecordedCycle> = {}): RecordedCycle {
  return { id: `${tsMs}-0`, tsMs, result: 'ok', durationMs: 12, symbols: 2, written: 2, leader: 'w1', role: 'leader', mode: 'shadow', modeSource: 'env', portfolio: 'fresh', stale: {}, cause: '', ...overrides };
}

/** A cycle every 5 s over the window, and one just before it. */
function steadyCycles(override: (tsMs: number, i: number) => Partial<RecordedCycle> = () => ({})): { cycles: RecordedCycle[]; before: RecordedCycle } {
  const cycles: RecordedCycle[] = [];
  for (let t = NOW - HOUR + 1000, i = 0; t <= NOW; t += 5000, i++) cycles.push(cycle(t, override(t, i)));
  return { cycles, before: cycle(NOW - HOUR - 4000) };
}

/** The guide's Test 1 hash (budget 1348) written by the cycle at `cycleMs`, long 1 ETH-like unit at 1000. */
function hashAt(cycleMs: number, overrides: Record<string, string> = {}): Record<string, string> {
  const { over_budget_usd: _o, last_violation_ts: _l, ...fields } = encodeBudgetHash(
    budgetFixture({ symbol: 'ETHUSDT', timestamp: Math.floor(cycleMs / 1000), position_amt: 1, position_notional_usd: 1000, over_budget_usd: 0, position_price: 1000 }),
  );
  return { ...fields, ...overrides };
}

let seq = 0;
/** A decision 1 s after the cycle at `cycleMs`: within budget (projected 1100) unless `wouldBlock`. */
function decision(cycleMs: number, overrides: Partial<LoggedDecision> & { wouldBlock?: boolean } = {}): LoggedDecision {
  seq += 1;
  const wouldBlock = overrides.wouldBlock ?? false;
  const symbol = overrides.symbol ?? 'ETHUSDT';
  return {
    id: `${cycleMs + 1000}-${seq}`,
    tsMs: cycleMs + 1000,
    planId: `p${seq}`,
    symbol,
    action: 'OPEN',
    side: 'BUY',
    qty: wouldBlock ? 0.5 : 0.1,
    reason: wouldBlock ? 'shadow_would_block' : 'within_budget',
    ...(wouldBlock ? { detail: 'projected_over_budget' } : {}),
    allow: true,
    wouldBlock,
    failOpen: false,
    enforced: false,
    mode: 'shadow',
    source: 'redis',
    gate: 'gov-1',
    via: 'node',
    budgetUsd: 1348,
    positionNotionalUsd: 1000,
    projectedNotionalUsd: wouldBlock ? 1500 : 1100,
    hash: hashAt(cycleMs, { symbol }),
    policy: { staleAfterMs: 60000, violationWindowMs: 30000, maxClockSkewMs: 5000, forceShadow: false },
    ...overrides,
  };
}

interface History {
  cycles?: RecordedCycle[];
  before?: RecordedCycle | null;
  decisions?: (cycles: RecordedCycle[]) => LoggedDecision[];
  violations?: ViolationSeen[];
  budgets?: Record<string, string>[];
  modeOverride?: string | null;
  context?: Partial<ReadinessContext>;
}

/** A healthy shadow hour unless overridden: steady cycles, decisions on ten symbols, a few would-blocks. */
function judge(h: History = {}) {
  const steady = steadyCycles();
  const cycles = h.cycles ?? steady.cycles;
  const context = { ...ctx, ...h.context };
  const tally = new DecisionTally(context, cycles);
  const decisions =
    h.decisions?.(cycles) ??
    cycles.slice(0, 300).map((c, i) => decision(c.tsMs, { symbol: `S${i % 10}USDT`, wouldBlock: i % 37 === 0 }));
  for (const d of decisions) tally.add(d);
  const facts: ReadinessFacts = {
    cycles,
    decisions: tally,
    violations: h.violations ?? [],
    budgets: h.budgets ?? [hashAt(NOW - 4000)],
    modeOverride: h.modeOverride ?? null,
  };
  const before = h.before === undefined ? steady.before : h.before;
  if (before) facts.cycleBeforeWindow = before;
  return judgeReadiness(facts, context);
}

const item = (report: ReturnType<typeof judge>, id: ReadinessItemId) => report.items.find((i) => i.id === id)!;

describe('readiness judgement (constructed histories)', () => {
  it('passes every item on a steady shadow hour, and only then says ready', () => {
    const report = judge();
    for (const i of report.items) expect(i.pass, `${i.id}: ${i.summary} ${i.details.join('; ')}`).to.equal(true);
    expect(report.ready).to.equal(true);
    expect(item(report, 'shadow_stable').figures).to.include({ cycles: 720, failed: 0 });
    expect(item(report, 'no_false_positives').figures).to.include({ unexplained: 0 });
  });

  describe('shadow stable', () => {
    it('fails when the cycle history covers only part of the window', () => {
      const report = judge({ cycles: steadyCycles().cycles.slice(-120), before: null });
      expect(item(report, 'shadow_stable').pass).to.equal(false);
      expect(item(report, 'shadow_stable').details.join(' ')).to.match(/covers 10 min of the 1 h window/);
      expect(report.ready).to.equal(false);
    });
    it('fails when more than 1 % of the cycles failed, naming the causes', () => {
      const { cycles } = steadyCycles((_t, i) => (i % 20 === 0 ? { result: 'failed', cause: 'NOPERM' } : {}));
      const stable = item(judge({ cycles }), 'shadow_stable');
      expect(stable.pass).to.equal(false);
      expect(stable.figures.failedShare).to.equal(0.05);
      expect(stable.details.join(' ')).to.include('NOPERM 36');
    });
    it('fails on a gap without budgets longer than HEALTH_MAX_BUDGET_AGE_SEC', () => {
      const cycles = steadyCycles().cycles.filter((c) => c.tsMs < NOW - 30 * 60000 || c.tsMs > NOW - 29 * 60000);
      const stable = item(judge({ cycles }), 'shadow_stable');
      expect(stable.pass).to.equal(false);
      expect(stable.figures.maxGapSec).to.equal(65);
    });
  });

  describe('budget computations accurate', () => {
    it("fails on a hash whose budget does not follow from its inputs (the guide's sample 1800.50) and lists it", () => {
      const accurate = item(judge({ budgets: [hashAt(NOW - 4000, { budget_usd: '1800.5', symbol: 'BTCUSDT' })] }), 'budgets_accurate');
      expect(accurate.pass).to.equal(false);
      expect(accurate.listed[0]).to.include({ symbol: 'BTCUSDT' });
      expect(String(accurate.listed[0]!.why)).to.include('budget_usd 1800.5 but the formula gives 1348');
    });
    it('fails when nothing could be checked', () => {
      expect(item(judge({ budgets: [], decisions: () => [] }), 'budgets_accurate').pass).to.equal(false);
    });
  });

  describe('no false positives', () => {
    it('fails when would-blocks come from cycles that used fallback inputs, and says which', () => {
      const { cycles } = steadyCycles((_t, i) => (i < 100 ? { stale: { heat: 1 } } : {}));
      const report = judge({ cycles, decisions: (cs) => cs.slice(0, 200).map((c, i) => decision(c.tsMs, { symbol: `S${i % 20}USDT`, wouldBlock: i % 10 === 0 })) });
      const fp = item(report, 'no_false_positives');
      expect(fp.pass).to.equal(false);
      expect(fp.figures).to.include({ wouldBlocks: 20, unexplained: 10, unexplainedShare: 0.5 });
      expect(fp.details[0]).to.include('used fallback inputs (heat 1)');
    });
    it('fails on a would-block whose projected notional is within the budget and no violation is recent', () => {
      const fp = item(judge({ decisions: (cs) => [decision(cs[10]!.tsMs, { wouldBlock: true, projectedNotionalUsd: 1200 })] }), 'no_false_positives');
      expect(fp.pass).to.equal(false);
      expect(fp.details[0]).to.include('neither the projected notional nor a recent violation');
    });
    it('lists a symbol whose would-block rate stands out', () => {
      const fp = item(
        judge({
          decisions: (cs) => cs.slice(0, 400).map((c, i) => (i < 40 ? decision(c.tsMs, { symbol: 'DOGEUSDT', wouldBlock: i % 2 === 0 }) : decision(c.tsMs, { symbol: `S${i % 10}USDT`, wouldBlock: i % 100 === 50 }))),
        }),
        'no_false_positives',
      );
      expect(fp.pass).to.equal(false);
      expect(fp.listed).to.deep.equal([{ symbol: 'DOGEUSDT', kind: 'would_block_rate', judged: 40, wouldBlock: 20, rate: 0.5 }]);
    });
    it('lists a symbol whose violations flap', () => {
      const violations = Array.from({ length: 6 }, (_, i) => ({ symbol: 'XRPUSDT', tsMs: NOW - HOUR + i * 60000 }));
      violations.push({ symbol: 'BTCUSDT', tsMs: NOW - 60000 }, { symbol: 'BTCUSDT', tsMs: NOW - 50000 });
      const fp = item(judge({ violations }), 'no_false_positives');
      expect(fp.pass).to.equal(false);
      expect(fp.listed).to.deep.equal([{ symbol: 'XRPUSDT', kind: 'flapping', onsets: 6 }]);
      expect(violationOnsets(violations, 26000).find((o) => o.symbol === 'BTCUSDT')?.onsets).to.equal(1);
    });
  });

  describe('Governor integration', () => {
    it('fails when no gate logged a decision', () => {
      const gi = item(judge({ decisions: () => [] }), 'governor_integration');
      expect(gi.pass).to.equal(false);
      expect(gi.details.join(' ')).to.include('no decision logged');
    });
    it('fails when more than 1 % of decisions failed open, by reason', () => {
      const gi = item(
        judge({ decisions: (cs) => cs.slice(0, 100).map((c, i) => (i % 10 === 0 ? decision(c.tsMs, { reason: 'timeout', failOpen: true, hash: undefined, source: 'none' }) : decision(c.tsMs))) }),
        'governor_integration',
      );
      expect(gi.pass).to.equal(false);
      expect(gi.figures).to.include({ decisions: 100, failOpen: 10, failOpenShare: 0.1 });
      expect(gi.details.join(' ')).to.include('timeout 10');
    });
    it('lists every gate with its way in', () => {
      const gi = item(judge({ decisions: (cs) => [decision(cs[1]!.tsMs), decision(cs[2]!.tsMs, { gate: 'api-1', via: 'http' })] }), 'governor_integration');
      expect(gi.pass).to.equal(true);
      expect(gi.listed).to.deep.equal([{ gate: 'gov-1', via: 'node', decisions: 1 }, { gate: 'api-1', via: 'http', decisions: 1 }]);
    });
  });

  describe('stale inputs', () => {
    it('fails at 5 % of computations or more, and passes below', () => {
      const at = (every: number) => steadyCycles((_t, i) => (i % every === 0 ? { stale: { heat: 1 } } : {})).cycles;
      expect(item(judge({ cycles: at(10) }), 'stale_inputs').figures.staleShare).to.equal(0.05);
      expect(item(judge({ cycles: at(10) }), 'stale_inputs').pass).to.equal(false);
      expect(item(judge({ cycles: at(20) }), 'stale_inputs').pass).to.equal(true);
    });
  });

  describe('rollback ready', () => {
    it('fails while the run-time override is set', () => {
      const rb = item(judge({ modeOverride: 'enforce' }), 'rollback_ready');
      expect(rb.pass).to.equal(false);
      expect(rb.details[0]).to.include('p28-worker mode --clear');
    });
    it("fails when this configuration's P28_MODE is not the mode the leader runs", () => {
      expect(item(judge({ context: { configuredMode: 'enforce' } }), 'rollback_ready').pass).to.equal(false);
    });
    it('fails when the leader took its mode from the override', () => {
      const { cycles } = steadyCycles(() => ({ modeSource: 'override' }));
      expect(item(judge({ cycles }), 'rollback_ready').pass).to.equal(false);
    });
  });

  it('renders a table first and the details after, and a ledger entry that ticks only what passed', () => {
    const report = judge({ modeOverride: 'enforce' });
    const text = renderReadiness(report);
    expect(text.split('\n')[0]).to.include('NOT READY (1 of 6 items fail)');
    expect(text).to.match(/ITEM\s+RESULT\s+FIGURES/);
    expect(text.indexOf('ITEM')).to.be.below(text.indexOf('details'));
    const ledger = renderLedger(report, { mode: 'shadow' });
    expect(ledger).to.include('- [x] **Shadow mode stable**');
    expect(ledger).to.include('- [ ] **Rollback plan ready**');
    expect(ledger).to.include('| Rollback plan ready | **FAIL** |');
  });

  it('reads windows as durations between 1m and 30d', () => {
    expect(parseWindow('24h')).to.equal(86400000);
    expect(parseWindow('90m')).to.equal(5400000);
    expect(() => parseWindow('24')).to.throw(WindowError, /expected a duration/);
    expect(() => parseWindow('31d')).to.throw(WindowError);
    expect(() => parseWindow('10s')).to.throw(WindowError);
  });
});
