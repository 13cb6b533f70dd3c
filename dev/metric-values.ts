import type { Registry } from 'prom-client';

/**
 * The value of one series of a metric on `registry` (0 when the series does not exist), read
 * through prom-client's own API. For a histogram name the series, as `name` (`<metric>_count`) or
 * as `series` beside the metric's name.
 */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}, series: string = name): Promise<number> {
  const own = registry.getSingleMetric(name) ? name : name.replace(/_(count|sum|bucket)$/, '');
  const metric = registry.getSingleMetric(own);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  const match = values.find(
    (value) =>
      ((value as { metricName?: string }).metricName ?? own) === series &&
      Object.keys(value.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected),
  );
  return match?.value ?? 0;
}

/** Label sets of a metric's series. */
export async function metricLabels(registry: Registry, name: string): Promise<Record<string, string | number>[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values.map((v) => ({ ...v.labels }) as Record<string, string | number>);
}

/**
 * The value of one series (`name{label="value",...}` exactly as exposed) in a Prometheus text
 * exposition, for metrics read over HTTP from another process; undefined when absent.
 */
export function seriesValue(text: string, series: string): number | undefined {
  const escaped = series.replace(/[{}"=,.]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}
