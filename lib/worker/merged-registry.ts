import { Registry, type Metric, type MetricObjectWithValues, type MetricValue } from 'prom-client';

type Values = MetricObjectWithValues<MetricValue<string>>;

/** The metrics of another registry out of reach of this thread (the cycle thread's): `CycleThread`. */
export interface ThreadMetrics {
  /** Its metrics in the Prometheus text format ('' when there are none). */
  metricsText(): Promise<string>;
  /** The names of its metrics, as last reported. */
  metricNames(): ReadonlySet<string>;
  metricValues(name: string): Promise<Values | undefined>;
  metricsJson(): Promise<Values[]>;
}

/**
 * The service's registry when the cycle runs in its own thread: the metrics registered here (the
 * gate's, the process's) plus the cycle thread's, under their own names and values, in
 * `/metrics` and through prom-client's API (`getSingleMetric`, `getMetricsAsJSON`). The thread
 * renders its exposition text itself, so a scrape of 20,000 symbols' series costs the main thread
 * one string, not the work of formatting them.
 */
export class MergedRegistry extends Registry {
  constructor(private readonly thread: ThreadMetrics) {
    super();
  }

  override async metrics(): Promise<string> {
    const parts = await Promise.all([super.metrics(), this.thread.metricsText()]);
    const blocks = parts.map((text) => text.trim()).filter((text) => text.length > 0);
    return `${blocks.join('\n\n')}\n`;
  }

  override async getMetricsAsJSON(): Promise<Values[]> {
    const [own, thread] = await Promise.all([super.getMetricsAsJSON(), this.thread.metricsJson().catch(() => [])]);
    return [...(own as Values[]), ...thread];
  }

  /** A metric of this registry, else a read-only stand-in for the cycle thread's metric of that name. */
  override getSingleMetric<T extends string>(name: string): Metric<T> | undefined {
    const own = super.getSingleMetric<T>(name);
    if (own !== undefined || !this.thread.metricNames().has(name)) return own;
    const thread = this.thread;
    const standIn = {
      name,
      get: async () => (await thread.metricValues(name)) ?? { name, help: '', type: 'gauge', aggregator: 'sum', values: [] },
    };
    return standIn as unknown as Metric<T>;
  }
}
