import { expect } from 'chai';
import { DECISION_LOG_FIELDS, DecisionLogEntry, decisionLogText, hashKeyOf, packDecisionLogValues, readLoggedDecision, unpackDecisionLogEntry } from '../../../types/decision-log-entry';

/** An entry's values by name: a within-budget plan on the guide's hash. */
function values(overrides: Record<string, string> = {}): Record<string, string> {
  const v: Record<string, string> = Object.fromEntries(DECISION_LOG_FIELDS.map((n) => [n, '']));
  return Object.assign(v, {
    v: '1', ts: '1767225600123', plan_id: 'p-1', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.1', reason: 'within_budget', gate: 'gov-1', via: 'node',
    allow: '1', would_block: '0', fail_open: '0', enforced: '0', mode: 'shadow', source: 'redis', budget_usd: '1348', position_notional_usd: '1000', projected_notional_usd: '1100',
    equity_usd: '100000', portfolio_heat: '0.65', cluster_stress: '0', vol_regime: '0.33', base_risk_pct: '0.02', stress_factor: '0.326', hash_mode: 'shadow', hash_ts: '1767225598',
    position_amt: '1', position_price: '1000', position_status: 'ok', stale_after_ms: '60000', violation_window_ms: '30000', max_clock_skew_ms: '5000', force_shadow: '0',
  }, overrides);
}
const packed = (v: Record<string, string>): string => packDecisionLogValues(DECISION_LOG_FIELDS.map((n) => v[n]!));

describe('decision log entry format', () => {
  it('reads back what the schema accepts: the plan, the decision, the policy and the hash under its own names', () => {
    const v = values();
    expect(DecisionLogEntry.safeParse(v).success).to.equal(true);
    expect(unpackDecisionLogEntry(packed(v))).to.deep.equal(v);
    const d = readLoggedDecision('1767225600123-0', ['d', packed(v)])!;
    expect(d).to.include({ id: '1767225600123-0', tsMs: 1767225600123, planId: 'p-1', symbol: 'ETHUSDT', side: 'BUY', qty: 0.1, reason: 'within_budget', allow: true, wouldBlock: false, mode: 'shadow', gate: 'gov-1', projectedNotionalUsd: 1100 });
    expect(d.policy).to.deep.equal({ staleAfterMs: 60000, violationWindowMs: 30000, maxClockSkewMs: 5000, forceShadow: false });
    expect(d.hash).to.deep.equal({
      symbol: 'ETHUSDT', timestamp: '1767225598', mode: 'shadow', budget_usd: '1348', position_notional_usd: '1000', equity_usd: '100000', portfolio_heat: '0.65',
      cluster_stress: '0', vol_regime: '0.33', base_risk_pct: '0.02', stress_factor: '0.326', position_amt: '1', position_price: '1000', position_status: 'ok',
    });
  });

  it('gives equal hash keys exactly to decisions that read the same hash, from the packed value as from the hash', () => {
    const a = readLoggedDecision('1-0', ['d', packed(values())])!;
    const b = readLoggedDecision('2-0', ['d', packed(values({ plan_id: 'p-2', qty: '0.3', projected_notional_usd: '1300' }))])!;
    const c = readLoggedDecision('3-0', ['d', packed(values({ portfolio_heat: '0.66' }))])!;
    expect(a.hashKey).to.equal(b.hashKey);
    expect(a.hashKey).to.not.equal(c.hashKey);
    expect(a.hashKey).to.equal(hashKeyOf(a.hash!));
    expect(readLoggedDecision('4-0', ['d', packed(values({ hash_ts: '', budget_usd: '' }))])!.hash).to.equal(undefined);
  });

  it('writes a | inside a text value as / so that it cannot shift the values, and refuses what is not this format', () => {
    const d = readLoggedDecision('1-0', ['d', packed(values({ plan_id: decisionLogText('a|b') }))])!;
    expect(d.planId).to.equal('a/b');
    expect(readLoggedDecision('1-0', ['d', packed(values({ v: '2' }))])).to.equal(undefined);
    expect(readLoggedDecision('1-0', ['d', `${packed(values())}|extra`])).to.equal(undefined);
    expect(readLoggedDecision('1-0', ['event_type', 'budget.violation'])).to.equal(undefined);
  });
});
