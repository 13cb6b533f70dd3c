import { z } from 'zod';
import { Mode } from './mode';
import { SymbolName } from './symbol';
import { epochSecondsString, numericString } from './wire-number';

export const VIOLATION_EVENT_TYPE = 'budget.violation';

/** The object carried by one `quantum:stream:budget.violation` entry. */
export const ViolationEvent = z.object({
  event_type: z.literal(VIOLATION_EVENT_TYPE),
  symbol: SymbolName,
  position_notional: z.number().min(0),
  budget_usd: z.number().min(0),
  over_budget: z.number().positive(),
  mode: Mode,
  timestamp: z.number().min(0),
});
export type ViolationEvent = z.infer<typeof ViolationEvent>;

/**
 * A stream entry as read back with XRANGE: the flat string fields plus `json`, the same object as
 * JSON for readers of the older format.
 */
export const ViolationStreamEntry = z.object({
  event_type: z.literal(VIOLATION_EVENT_TYPE),
  symbol: SymbolName,
  position_notional: numericString({ min: 0 }),
  budget_usd: numericString({ min: 0 }),
  over_budget: numericString({ min: 0, exclusiveMin: true }),
  mode: Mode,
  timestamp: epochSecondsString,
  json: z.string(),
});
export type ViolationStreamEntry = z.output<typeof ViolationStreamEntry>;

/** Renders a violation as the XADD field/value list: flat fields plus `json`. */
export function encodeViolationEvent(event: ViolationEvent): string[] {
  const parsed = ViolationEvent.parse(event);
  return [
    'event_type', parsed.event_type,
    'symbol', parsed.symbol,
    'position_notional', String(parsed.position_notional),
    'budget_usd', String(parsed.budget_usd),
    'over_budget', String(parsed.over_budget),
    'mode', parsed.mode,
    'timestamp', String(parsed.timestamp),
    'json', JSON.stringify(parsed),
  ];
}
