import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { numericString } from '../../../types/wire-number';
import { silentLogger, type Logger } from '../../logger';
import type { InputProblem } from './input-problem';
import type { PortfolioSourceDef } from './input-source';

/** The gauge the P2.6 Heat Gate exports. */
export const HEAT_METRIC = 'p26_heat_value';

/** Why a heat fetch did not yield a usable value. */
export type HeatFailure = 'unreachable' | 'timeout' | 'http_status' | 'too_large' | 'unparsable' | 'missing_metric' | 'out_of_range';

/**
 * The heat a cycle uses. `live`: read from P2.6 just now. `lkg`: P2.6 failed and its last
 * good value (younger than MAX_LKG_AGE_SEC) stands in. `default`: P2.6 failed and nothing usable is
 * known, so 0.0 is used as the contract says. Every reading but `live` carries the failure.
 */
export interface HeatReading {
  value: number;
  source: 'live' | 'lkg' | 'default';
  failure?: HeatFailure;
  /** What went wrong, for logs (status code, parser message, the offending value). */
  detail?: string;
  /** Seconds since the value was fetched (0 for live). */
  ageSec?: number;
}

/** Anything that yields the portfolio heat for a cycle; the worker takes one, tests inject fakes. */
export interface HeatReader {
  read(): Promise<HeatReading>;
}

export interface HeatSourceOptions {
  /** P2.6 exposition URL (HEAT_GATE_METRICS_URL). */
  url: string;
  /** Time limit of one fetch, headers and body together (HEAT_FETCH_TIMEOUT_MS). */
  timeoutMs: number;
  /**
   * Largest response body read, in bytes (HEAT_MAX_BYTES, default 1 MiB). A longer answer is cut
   * off (the request is aborted) and treated as a failed fetch, so a runaway exporter can cost at
   * most this much memory and parse time per cycle.
   */
  maxBytes?: number;
  /** How long the last good value may stand in, in seconds (MAX_LKG_AGE_SEC); 0 = never. */
  maxLkgAgeSec: number;
  /** Clock in epoch ms (default `Date.now`). */
  now?: () => number;
  logger?: Logger;
}

export const HEAT_SOURCE_DEFAULTS = Object.freeze({
  /** A P2.6 exposition is a few hundred bytes; 1 MiB leaves room for many labelled samples. */
  maxBytes: 1048576,
});

const heatValue = numericString({ min: 0, max: 1 });

/**
 * Extracts `p26_heat_value` from Prometheus exposition text. Several samples of the gauge (with
 * different labels) are allowed; the highest valid one wins, because more heat means smaller budgets
 * and a conservative reading is the safe one. A sample that is not a finite number in [0,1] is
 * ignored unless no valid sample remains, in which case the whole reading is out of range.
 */
export function heatFromExposition(text: string): { value: number } | { failure: HeatFailure; detail: string } {
  let families: ReturnType<typeof parsePrometheusTextFormat>;
  try {
    families = parsePrometheusTextFormat(text);
  } catch (error) {
    return { failure: 'unparsable', detail: (error as Error).message };
  }
  const family = families.find((f) => f.name === HEAT_METRIC);
  if (!family || family.metrics.length === 0) return { failure: 'missing_metric', detail: `no ${HEAT_METRIC} sample` };
  if (family.type !== 'GAUGE' && family.type !== 'UNTYPED') {
    return { failure: 'missing_metric', detail: `${HEAT_METRIC} is a ${family.type.toLowerCase()}, expected a gauge` };
  }
  const values: number[] = [];
  for (const sample of family.metrics) {
    const parsed = heatValue.safeParse(sample.value ?? '');
    if (parsed.success) values.push(parsed.data);
  }
  if (values.length === 0) {
    const shown = family.metrics.map((m) => JSON.stringify(m.value ?? '')).join(', ');
    return { failure: 'out_of_range', detail: `${HEAT_METRIC} must be in [0,1], got ${shown}` };
  }
  return { value: Math.max(...values) };
}

/**
 * Reads portfolio heat from the P2.6 Heat Gate's `/metrics` with a bounded timeout. Never throws:
 * on any failure (down, slow, non-200, unparsable, metric missing or out of range) it returns the
 * last good value while that is younger than `maxLkgAgeSec`, else 0.0. A failure is logged at warn
 * when its cause or fallback changes, not on every cycle, and recovery is logged at info.
 */
export class HeatSource implements HeatReader {
  private readonly now: () => number;
  private readonly logger: Logger;
  private lastGood: { value: number; atMs: number } | undefined;
  /** `failure/source` of the previous reading, to log changes only; undefined while healthy. */
  private lastFallback: string | undefined;

  constructor(private readonly options: HeatSourceOptions) {
    this.now = options.now ?? (() => Date.now());
    this.logger = options.logger ?? silentLogger;
  }

  async read(): Promise<HeatReading> {
    const fetched = await this.fetchHeat();
    const nowMs = this.now();
    if ('value' in fetched) {
      this.lastGood = { value: fetched.value, atMs: nowMs };
      if (this.lastFallback !== undefined) {
        this.logger.info({ heat: fetched.value, previous: this.lastFallback }, 'heat source recovered');
        this.lastFallback = undefined;
      }
      return { value: fetched.value, source: 'live', ageSec: 0 };
    }
    const reading = this.fallback(fetched.failure, fetched.detail, nowMs);
    const key = `${reading.failure}/${reading.source}`;
    if (key !== this.lastFallback) {
      this.logger.warn(
        { url: this.options.url, failure: reading.failure, detail: reading.detail, fallback: reading.source, heat: reading.value, ageSec: reading.ageSec },
        `heat unavailable (${reading.failure}); using ${reading.source === 'lkg' ? 'the last known value' : '0.0'}`,
      );
      this.lastFallback = key;
    }
    return reading;
  }

  private fallback(failure: HeatFailure, detail: string, nowMs: number): HeatReading {
    const good = this.lastGood;
    if (good) {
      const ageSec = Math.max(0, (nowMs - good.atMs) / 1000);
      if (this.options.maxLkgAgeSec > 0 && ageSec <= this.options.maxLkgAgeSec) {
        return { value: good.value, source: 'lkg', failure, detail, ageSec };
      }
    }
    return { value: 0, source: 'default', failure, detail };
  }

  private async fetchHeat(): Promise<{ value: number } | { failure: HeatFailure; detail: string }> {
    const maxBytes = this.options.maxBytes ?? HEAT_SOURCE_DEFAULTS.maxBytes;
    const abort = new AbortController();
    let text: string;
    try {
      const response = await fetch(this.options.url, {
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), abort.signal]),
        headers: { accept: 'text/plain' },
      });
      if (response.status !== 200) {
        abort.abort();
        return { failure: 'http_status', detail: `HTTP ${response.status}` };
      }
      const body = await readBounded(response, maxBytes);
      if (body === undefined) {
        // Stop the transfer: the rest of the body is never downloaded, buffered or parsed.
        abort.abort();
        return { failure: 'too_large', detail: `response longer than HEAT_MAX_BYTES (${maxBytes} bytes)` };
      }
      text = body;
    } catch (error) {
      const e = error as Error;
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        return { failure: 'timeout', detail: `no answer within ${this.options.timeoutMs} ms` };
      }
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return { failure: 'unreachable', detail: cause?.code ?? cause?.message ?? e.message };
    }
    return heatFromExposition(text);
  }
}

/** The body as text, or undefined as soon as it is known to exceed `maxBytes` (by Content-Length or by counting). */
async function readBounded(response: Response, maxBytes: number): Promise<string | undefined> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) return undefined;
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of response.body) {
    length += chunk.byteLength;
    if (length > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length).toString('utf8');
}

/**
 * The heat input, portfolio-wide: the injected `HeatReader` (a `HeatSource` in production), fetched
 * alongside the cycle's first batch. A reading other than `live` counts one `heat` fallback; a reader
 * that rejects counts as an unreachable heat source (0.0).
 */
export const heatSource = {
  name: 'heat',
  scope: 'portfolio',
  staleLabels: ['heat'],
  create: (s: { heat: HeatReader }) => ({
    commands: () => [],
    async read(_outcomes: unknown, _nowMs: number, problems: InputProblem<'heat'>[]): Promise<HeatReading> {
      let reading: HeatReading;
      try {
        reading = await s.heat.read();
      } catch (error) {
        reading = { value: 0, source: 'default', failure: 'unreachable', detail: (error as Error).message };
      }
      if (reading.source !== 'live') problems.push({ inputType: 'heat', subject: 'portfolio', detail: `${reading.failure}: ${reading.detail}; using ${reading.value} (${reading.source})` });
      return reading;
    },
  }),
} as const satisfies PortfolioSourceDef<HeatReading, 'heat', { heat: HeatReader }>;
