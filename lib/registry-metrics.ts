import { Counter, Gauge, Histogram, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration, type Registry } from 'prom-client';

/**
 * Get-or-create for metrics on a registry the host owns. prom-client throws when a name is
 * registered twice, and a host may well register two gates or build two pipelines on one
 * registry; the second one then shares the first one's metric instead of failing at start-up.
 */
function existing<T>(registry: Registry, name: string, type: abstract new (...args: never[]) => T): T | undefined {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  if (!(metric instanceof type)) {
    throw new TypeError(`metric ${name} is already registered on this registry with another type`);
  }
  return metric;
}

export function counterOn<L extends string>(registry: Registry, config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
  return existing<Counter<L>>(registry, config.name, Counter) ?? new Counter({ ...config, registers: [registry] });
}

export function gaugeOn<L extends string>(registry: Registry, config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
  return existing<Gauge<L>>(registry, config.name, Gauge) ?? new Gauge({ ...config, registers: [registry] });
}

export function histogramOn<L extends string>(registry: Registry, config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
  return existing<Histogram<L>>(registry, config.name, Histogram) ?? new Histogram({ ...config, registers: [registry] });
}
