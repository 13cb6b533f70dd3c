import { Counter, Gauge, Histogram, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration, type Registry } from 'prom-client';

/**
 * One metric, declared once: its name, type, help and labels. The component creates it with
 * `metricOn` / `metricsOn`, and docs/metrics.md's tables are generated from the same declarations
 * (`npm run docs:gen`), so a new metric is one entry in its component's table.
 */
export interface MetricDeclaration<L extends string = string> {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  /** The HELP line of the exposition, and the meaning column of the docs. */
  help: string;
  labelNames?: readonly L[];
  /** The values a label takes, when the set is closed: shown in the docs. */
  labelValues?: { readonly [K in L]?: readonly string[] };
  /** Histogram buckets, in the metric's unit. */
  buckets?: readonly number[];
}

type Declared<T extends MetricDeclaration['type']> = <const L extends string = never>(
  declaration: Omit<MetricDeclaration<L>, 'type'>,
) => MetricDeclaration<L> & { type: T };

export const counter: Declared<'counter'> = (declaration) => ({ ...declaration, type: 'counter' });
export const gauge: Declared<'gauge'> = (declaration) => ({ ...declaration, type: 'gauge' });
export const histogram: Declared<'histogram'> = (declaration) => ({ ...declaration, type: 'histogram' });

/** Label names of a declaration; a metric without labels takes prom-client's default. */
type LabelsOf<D> = D extends MetricDeclaration<infer L> ? ([L] extends [never] ? string : L) : string;

/** The prom-client metric a declaration gives. */
export type MetricOf<D> = D extends { type: 'counter' }
  ? Counter<LabelsOf<D>>
  : D extends { type: 'gauge' }
    ? Gauge<LabelsOf<D>>
    : Histogram<LabelsOf<D>>;

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

/**
 * The metric of `declaration` on `registry` (the one already there under its name, or a new one).
 * `collect` is prom-client's scrape-time hook, for metrics rendered from numbers kept elsewhere.
 */
export function metricOn<D extends MetricDeclaration>(registry: Registry, declaration: D, collect?: (this: MetricOf<D>) => void): MetricOf<D> {
  const { name, help, labelNames, buckets } = declaration;
  const config = { name, help, labelNames: [...(labelNames ?? [])], registers: [registry], ...(collect ? { collect } : {}) };
  if (declaration.type === 'counter') {
    return (existing(registry, name, Counter) ?? new Counter(config as CounterConfiguration<string>)) as MetricOf<D>;
  }
  if (declaration.type === 'gauge') {
    return (existing(registry, name, Gauge) ?? new Gauge(config as GaugeConfiguration<string>)) as MetricOf<D>;
  }
  return (existing(registry, name, Histogram) ?? new Histogram({ ...config, buckets: buckets ? [...buckets] : undefined } as HistogramConfiguration<string>)) as MetricOf<D>;
}

/** Every metric of a component's declaration table, on `registry`, under the table's keys. */
export function metricsOn<T extends Record<string, MetricDeclaration>>(registry: Registry, declarations: T): { [K in keyof T]: MetricOf<T[K]> } {
  return Object.fromEntries(Object.entries(declarations).map(([key, d]) => [key, metricOn(registry, d)])) as { [K in keyof T]: MetricOf<T[K]> };
}
