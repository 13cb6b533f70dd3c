import type { Registry } from 'prom-client';
import { gauge, metricOn } from '../registry-metrics';
import type { RedisClient } from './client';

export const SERVER_CLOCK_DEFAULTS = Object.freeze({
  /**
   * How often the offset to Redis's clock is measured again, in ms. Host clocks drift by well under
   * a millisecond a minute, and a step (an NTP correction, an operator's `date -s`) is caught at the
   * next measurement, so this costs one `TIME` every half minute and never one per decision.
   */
  refreshMs: 30_000,
  /**
   * A measurement whose round trip took longer than this (ms) is not trusted: the midpoint of a slow
   * round trip can be off by half of it. The offset measured before stays.
   */
  maxRoundTripMs: 500,
  /**
   * How far ahead of Redis's clock (ms) a timestamp written by another process may be before it is
   * invalid: the measurement error of two offsets (each within half a round trip) plus a margin.
   */
  futureToleranceMs: 2000,
});

export interface ServerClockOptions {
  /** The host's clock in epoch ms (default `Date.now`); a test or a skewed host changes it. */
  hostNow?: () => number;
  /** Default `SERVER_CLOCK_DEFAULTS.refreshMs`. */
  refreshMs?: number;
  /** Default `SERVER_CLOCK_DEFAULTS.maxRoundTripMs`. */
  maxRoundTripMs?: number;
}

/**
 * Redis's clock, as seen from this process: the host clock plus an offset measured with `TIME`.
 *
 * Every timestamp the package writes (budget hashes, the heartbeat) and every age it judges is on
 * this one clock, so a host whose own clock is minutes off still writes and judges right: its error
 * is the offset, measured and exported as `p28_clock_skew_seconds` (host minus Redis). The offset is
 * measured at `start()`, at every reconnection and every `refreshMs` (or on demand with `measure()`,
 * as the worker does once per cycle); `now()` itself never does I/O. Until a first measurement the
 * offset is 0, the host clock.
 */
export class ServerClock {
  private readonly client: RedisClient;
  private readonly hostNow: () => number;
  private readonly refreshMs: number;
  private readonly maxRoundTripMs: number;
  private offset = 0;
  private measuredOnce = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onReady = (): void => void this.measure();

  constructor(client: RedisClient, options: ServerClockOptions = {}) {
    this.client = client;
    this.hostNow = options.hostNow ?? Date.now;
    this.refreshMs = options.refreshMs ?? SERVER_CLOCK_DEFAULTS.refreshMs;
    this.maxRoundTripMs = options.maxRoundTripMs ?? SERVER_CLOCK_DEFAULTS.maxRoundTripMs;
  }

  /** Redis's time now in epoch ms, from the host clock and the last measured offset. No I/O. */
  readonly now = (): number => this.hostNow() + this.offset;

  /** Redis minus host, in ms (0 until measured). */
  get offsetMs(): number {
    return this.offset;
  }

  /** Host minus Redis, in seconds: how far this host's clock is ahead (positive) or behind. */
  get skewSeconds(): number {
    return -this.offset / 1000;
  }

  /** Whether an offset has been measured at least once. */
  get measured(): boolean {
    return this.measuredOnce;
  }

  /**
   * Asks Redis for its time and updates the offset (the midpoint of the round trip). Resolves to
   * Redis's time now in epoch ms; never rejects: when Redis cannot answer, the last offset stays.
   */
  async measure(): Promise<number> {
    if (this.client.status !== 'ready') return this.now();
    const sent = this.hostNow();
    let reply: [string, string] | undefined;
    try {
      reply = (await this.client.time()) as unknown as [string, string];
    } catch {
      return this.now();
    }
    const received = this.hostNow();
    const serverMs = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
    if (Number.isFinite(serverMs) && received - sent <= this.maxRoundTripMs) {
      this.offset = Math.round(serverMs - (sent + received) / 2);
      this.measuredOnce = true;
    }
    return this.now();
  }

  /** Measures now, at every reconnection and every `refreshMs`, until `stop()`. */
  start(): void {
    if (this.timer) return;
    void this.measure();
    this.client.on('ready', this.onReady);
    this.timer = setInterval(this.onReady, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.client.off('ready', this.onReady);
  }

  /** Whether `epochMs`, written by some process, lies further ahead of Redis's clock than the tolerance. */
  isFromTheFuture(epochMs: number, toleranceMs: number = SERVER_CLOCK_DEFAULTS.futureToleranceMs): boolean {
    return epochMs - this.now() > toleranceMs;
  }
}

/**
 * `p28_clock_skew_seconds` on `registry`, read from `clock` at every scrape. A registry that
 * already has it (a worker hosting a gate shares one) keeps the first.
 */
export function registerClockSkewGauge(registry: Registry, clock: { readonly skewSeconds: number }): void {
  if (registry.getSingleMetric(SERVER_CLOCK_METRICS.skew.name)) return;
  metricOn(registry, SERVER_CLOCK_METRICS.skew, function collect() {
    this.set(clock.skewSeconds);
  });
}

/** The clock's metric, declared once (docs/metrics.md's worker table is generated from it). */
export const SERVER_CLOCK_METRICS = {
  skew: gauge({
    name: 'p28_clock_skew_seconds',
    help: "This host's clock minus Redis's (TIME), in seconds, as last measured. Budget timestamps, the heartbeat and every age are judged on Redis's clock, so a skew does not stop enforcement; alert on it all the same (NTP is broken). The gate exports it on its own registry too (unless it was given now).",
  }),
};
