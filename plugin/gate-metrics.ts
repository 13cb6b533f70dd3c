import { Histogram, type Gauge, type Registry } from 'prom-client';
import { ALLOW_REASONS, BLOCK_REASONS, FAIL_OPEN_REASONS, type GateDecision, type GateReason } from '../types/permit';
import { counter, gauge, histogram, metricOn } from '../lib/registry-metrics';

/** Breaker states as the `p28_gate_breaker_state` gauge reports them. */
export const BREAKER_STATE = Object.freeze({ closed: 0, halfOpen: 1, open: 2 });

/** The breaker events counted in `p28_gate_breaker_events_total{event}`. */
export const BREAKER_EVENTS = ['open', 'close', 'halfOpen', 'timeout', 'reject', 'failure', 'success', 'fallback'] as const;
export type BreakerEvent = (typeof BREAKER_EVENTS)[number];

/** Sub-millisecond up to a quarter second: a cached local read sits in the first buckets, a timeout in the last. */
const DURATION_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

/**
 * The gate's metrics, declared once: `GateMetrics` creates them on the host's registry, and
 * docs/metrics.md's gate table is generated from this table (`npm run docs:gen`).
 */
export const GATE_METRICS = {
  decisions: counter({
    name: 'p28_gate_decisions_total',
    help: 'Budget gate decisions by outcome (allow, block, fail_open) and reason; every series starts at 0.',
    labelNames: ['decision', 'reason'],
    labelValues: { decision: ['allow', 'block', 'fail_open'] },
  }),
  duration: histogram({
    name: 'p28_gate_decision_duration_seconds',
    help: 'Time the budget gate took to decide, in seconds (includes the Redis read).',
    buckets: DURATION_BUCKETS_SECONDS,
  }),
  breakerState: gauge({
    name: 'p28_gate_breaker_state',
    help: 'State of the budget gate circuit breaker: 0 closed, 1 half-open, 2 open.',
  }),
  breakerEvents: counter({
    name: 'p28_gate_breaker_events_total',
    help: 'Events of the budget gate circuit breaker.',
    labelNames: ['event'],
    labelValues: { event: BREAKER_EVENTS },
  }),
};

const DURATION_NAME = GATE_METRICS.duration.name;
const DURATION_HELP = GATE_METRICS.duration.help;

const DECISION_OF: ReadonlyArray<readonly [GateReason, string]> = [
  ...BLOCK_REASONS.map((reason) => [reason, 'block'] as const),
  ...ALLOW_REASONS.map((reason) => [reason, 'allow'] as const),
  ...FAIL_OPEN_REASONS.map((reason) => [reason, 'fail_open'] as const),
];

/**
 * What one gate has counted, as plain numbers: a decision costs a few additions here, and the
 * prom-client metrics read these only when scraped.
 */
class GateTallies {
  readonly reasons = Object.fromEntries(DECISION_OF.map(([reason]) => [reason, 0])) as Record<GateReason, number>;
  readonly events = Object.fromEntries(BREAKER_EVENTS.map((event) => [event, 0])) as Record<BreakerEvent, number>;
  /** Decisions per duration bucket (not cumulative); the last slot is past the largest bound. */
  readonly buckets = new Array<number>(DURATION_BUCKETS_SECONDS.length + 1).fill(0);
  sum = 0;
  count = 0;
}

/**
 * `p28_gate_decision_duration_seconds`, rendered at scrape time from the tallies of every gate on
 * the registry. prom-client's own `observe()` hashes labels and walks its bucket map on each call;
 * this one costs the permit path a loop over eleven bounds.
 */
class TalliedHistogram extends Histogram {
  readonly sources = new Set<GateTallies>();

  override async get(): Promise<Awaited<ReturnType<Histogram['get']>>> {
    const total = new Array<number>(DURATION_BUCKETS_SECONDS.length + 1).fill(0);
    let sum = 0;
    let count = 0;
    for (const tallies of this.sources) {
      for (let i = 0; i < total.length; i++) total[i]! += tallies.buckets[i]!;
      sum += tallies.sum;
      count += tallies.count;
    }
    const bucket = `${DURATION_NAME}_bucket`;
    let cumulative = 0;
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = DURATION_BUCKETS_SECONDS.map((le, i) => {
      cumulative += total[i]!;
      return { labels: { le }, value: cumulative, metricName: bucket };
    });
    values.push(
      { labels: { le: '+Inf' }, value: count, metricName: bucket },
      { labels: {}, value: sum, metricName: `${DURATION_NAME}_sum` },
      { labels: {}, value: count, metricName: `${DURATION_NAME}_count` },
    );
    return { name: DURATION_NAME, help: DURATION_HELP, type: 'histogram', aggregator: 'sum', values } as unknown as Awaited<ReturnType<Histogram['get']>>;
  }

  /** The registry renders text from this when it exists; the values above are already flat. */
  getForPromString(): ReturnType<Histogram['get']> {
    return this.get();
  }
}

/** The scrape-time metrics of a registry and the tallies of every gate on it. */
interface RegistryMetrics {
  sources: Set<GateTallies>;
  breakerState: Gauge;
}

const byRegistry = new WeakMap<Registry, RegistryMetrics>();

function registryMetrics(registry: Registry): RegistryMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const existing = registry.getSingleMetric(DURATION_NAME);
  if (existing !== undefined && !(existing instanceof TalliedHistogram)) {
    throw new TypeError(`metric ${DURATION_NAME} is already registered on this registry with another type`);
  }
  const duration =
    existing ??
    new TalliedHistogram({
      name: DURATION_NAME,
      help: DURATION_HELP,
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    });
  const sources = duration.sources;
  // Every series exists from the start at 0, so a rate() alert works before the first fail-open.
  metricOn(registry, GATE_METRICS.decisions, function collect() {
    this.reset();
    for (const [reason, decision] of DECISION_OF) {
      let n = 0;
      for (const tallies of sources) n += tallies.reasons[reason];
      this.labels(decision, reason).inc(n);
    }
  });
  metricOn(registry, GATE_METRICS.breakerEvents, function collect() {
    this.reset();
    for (const event of BREAKER_EVENTS) {
      let n = 0;
      for (const tallies of sources) n += tallies.events[event];
      this.labels(event).inc(n);
    }
  });
  const breakerState = metricOn(registry, GATE_METRICS.breakerState);
  const metrics = { sources, breakerState };
  byRegistry.set(registry, metrics);
  return metrics;
}

/**
 * The gate's metrics on the host's registry. A decision adds to plain numbers (its reason, its
 * duration bucket, sum and count); `p28_gate_decisions_total`, `p28_gate_breaker_events_total`
 * and `p28_gate_decision_duration_seconds` are rendered from them when the registry is scraped.
 * A second gate on the same registry reuses the same metrics, which add up both gates' numbers.
 */
export class GateMetrics {
  private readonly tallies = new GateTallies();
  private readonly breakerState: Gauge;

  constructor(readonly registry: Registry) {
    const metrics = registryMetrics(registry);
    metrics.sources.add(this.tallies);
    this.breakerState = metrics.breakerState;
  }

  /** Counts one decision and its duration in seconds. */
  record(decision: GateDecision, seconds: number): void {
    const t = this.tallies;
    t.reasons[decision.reason] += 1;
    t.sum += seconds;
    t.count += 1;
    let i = 0;
    while (i < DURATION_BUCKETS_SECONDS.length && seconds > DURATION_BUCKETS_SECONDS[i]!) i += 1;
    t.buckets[i]! += 1;
  }

  breakerEvent(event: BreakerEvent): void {
    this.tallies.events[event] += 1;
  }

  setBreakerState(state: number): void {
    this.breakerState.set(state);
  }
}
