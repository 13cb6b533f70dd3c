import type { Gauge, Histogram, Registry } from 'prom-client';
import { ALLOW_REASONS, BLOCK_REASONS, FAIL_OPEN_REASONS, type GateDecision, type GateReason } from '../types/permit';
import { counterOn, gaugeOn, histogramOn } from '../lib/registry-metrics';

/** Breaker states as the `p28_gate_breaker_state` gauge reports them. */
export const BREAKER_STATE = Object.freeze({ closed: 0, halfOpen: 1, open: 2 });

/** The opossum events counted in `p28_gate_breaker_events_total{event}`. */
export const BREAKER_EVENTS = ['open', 'close', 'halfOpen', 'timeout', 'reject', 'failure', 'success', 'fallback'] as const;
export type BreakerEvent = (typeof BREAKER_EVENTS)[number];

/** Sub-millisecond up to a quarter second: a cached local read sits in the first buckets, a timeout in the last. */
const DURATION_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

interface Increment {
  inc(value?: number): void;
}

function zeroed(child: Increment): Increment {
  child.inc(0);
  return child;
}

/**
 * The gate's metrics on the host's registry. Label children for every reason and breaker event
 * are bound once here, so a decision increments a counter without building a label object.
 * Registering a second gate on the same registry reuses the same metrics.
 */
export class GateMetrics {
  private readonly byReason: Record<GateReason, Increment>;
  private readonly byEvent: Record<BreakerEvent, Increment>;
  private readonly duration: Histogram;
  private readonly breakerState: Gauge;

  constructor(readonly registry: Registry) {
    const decisions = counterOn(registry, {
      name: 'p28_gate_decisions_total',
      help: 'Budget gate decisions by outcome (allow, block, fail_open) and reason.',
      labelNames: ['decision', 'reason'],
    });
    // Every series exists from the start at 0, so a rate() alert works before the first fail-open.
    const bind = (reasons: readonly GateReason[], decision: string) =>
      Object.fromEntries(reasons.map((reason) => [reason, zeroed(decisions.labels(decision, reason))]));
    this.byReason = {
      ...bind(BLOCK_REASONS, 'block'),
      ...bind(ALLOW_REASONS, 'allow'),
      ...bind(FAIL_OPEN_REASONS, 'fail_open'),
    } as Record<GateReason, Increment>;

    this.duration = histogramOn(registry, {
      name: 'p28_gate_decision_duration_seconds',
      help: 'Time the budget gate took to decide, in seconds (includes the Redis read).',
      buckets: DURATION_BUCKETS_SECONDS,
    });
    this.breakerState = gaugeOn(registry, {
      name: 'p28_gate_breaker_state',
      help: 'State of the budget gate circuit breaker: 0 closed, 1 half-open, 2 open.',
    });
    const events = counterOn(registry, {
      name: 'p28_gate_breaker_events_total',
      help: 'Events of the budget gate circuit breaker.',
      labelNames: ['event'],
    });
    this.byEvent = Object.fromEntries(BREAKER_EVENTS.map((event) => [event, zeroed(events.labels(event))])) as Record<
      BreakerEvent,
      Increment
    >;
  }

  /** Counts one decision and its duration in seconds. */
  record(decision: GateDecision, seconds: number): void {
    this.byReason[decision.reason].inc();
    this.duration.observe(seconds);
  }

  breakerEvent(event: BreakerEvent): void {
    this.byEvent[event].inc();
  }

  setBreakerState(state: number): void {
    this.breakerState.set(state);
  }
}
