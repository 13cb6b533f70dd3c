import { expect } from 'chai';
import { encodeViolationEvent, ViolationStreamEntry } from '../../../types/violation-event';

describe('violation event', () => {
  it('encodes flat fields plus the same object as json, readable by the stream schema', () => {
    const event = {
      event_type: 'budget.violation' as const,
      symbol: 'BTCUSDT',
      position_notional: 50000,
      budget_usd: 1348,
      over_budget: 48652,
      mode: 'shadow' as const,
      timestamp: 1764000000,
    };
    const flat = encodeViolationEvent(event);
    const record = Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]));
    expect(JSON.parse(record.json!)).to.deep.equal(event);
    expect(ViolationStreamEntry.parse(record)).to.include({ symbol: 'BTCUSDT', over_budget: 48652, budget_usd: 1348 });
  });
});
