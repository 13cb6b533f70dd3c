import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { percentile } from './stats';

/** One line of the results table: a figure, its same-run baseline, and the target it is held to. */
export interface Row {
  scenario: string;
  metric: string;
  unit: string;
  value: number;
  baseline?: number;
  /** value / baseline (or, for "lower is better" limits, value against the target). */
  ratio?: number;
  target?: string;
  met?: boolean;
}

/** A target on one percentile: at most `maxRatio` times the baseline, or at most `max` in the row's unit. */
export type LatencyTarget = { maxRatio: number } | { max: number };

/**
 * The p50 and p99 rows of one latency comparison: `samples.b` (the figure) against `samples.a`
 * (its same-run baseline), each with its target when one is given.
 */
export function latencyRows(
  scenario: string,
  unit: string,
  samples: { a: readonly number[]; b: readonly number[] },
  targets: { p50?: LatencyTarget; p99?: LatencyTarget } = {},
): Row[] {
  return ([[0.5, 'p50'], [0.99, 'p99']] as const).map(([q, name]) => {
    const value = percentile(samples.b, q);
    const baseline = percentile(samples.a, q);
    const row: Row = { scenario, metric: `latency ${name}`, unit, value, baseline, ratio: value / baseline };
    const target = targets[name];
    if (target && 'maxRatio' in target) Object.assign(row, { target: `<= ${target.maxRatio}x raw`, met: value / baseline <= target.maxRatio });
    else if (target) Object.assign(row, { target: `<= ${target.max} ${unit}`, met: value <= target.max });
    return row;
  });
}

const fmt = (x: number | undefined, digits = 1): string => {
  if (x === undefined || Number.isNaN(x)) return '-';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
};

export function machine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    node: process.version,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Renders the rows as a Markdown table (pasteable into the README). */
export function table(rows: readonly Row[]): string {
  const header = '| scenario | metric | value | baseline | ratio | target | met |';
  const rule = '|---|---|---:|---:|---:|---|---|';
  const lines = rows.map(
    (r) =>
      `| ${r.scenario} | ${r.metric} (${r.unit}) | ${fmt(r.value, 2)} | ${fmt(r.baseline, 2)} | ${r.ratio === undefined ? '-' : r.ratio.toFixed(2)} | ${r.target ?? '-'} | ${r.met === undefined ? '-' : r.met ? 'yes' : 'NO'} |`,
  );
  return [header, rule, ...lines].join('\n');
}

/** Writes the figures as JSON under bench-results/ (or BENCH_RESULTS_DIR) and returns the path. */
export function writeJson(rows: readonly Row[], extra: Record<string, unknown>): string {
  const dir = process.env.BENCH_RESULTS_DIR ?? join(process.cwd(), 'bench-results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify({ machine: machine(), ...extra, rows }, null, 2)}\n`);
  return path;
}
