/** The span a readiness report or a replay looks back over: `30m`, `24h`, `7d`, `3600s`. */
const WINDOW_PATTERN = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60000, h: 3600000, d: 86400000 } as const;

export const WINDOW_BOUNDS_MS = Object.freeze({ min: 60000, max: 30 * 86400000 });

/** Thrown for a window that is not a duration between one minute and 30 days. */
export class WindowError extends RangeError {
  readonly code = 'P28_WINDOW';
  constructor(readonly value: string) {
    super(`window: expected a duration such as 30m, 24h or 7d, between 1m and 30d, got ${JSON.stringify(value.slice(0, 40))}`);
    this.name = 'WindowError';
  }
}

/** A window as milliseconds; throws `WindowError`. */
export function parseWindow(raw: string): number {
  const match = WINDOW_PATTERN.exec(raw.trim());
  if (!match) throw new WindowError(raw);
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (!(ms >= WINDOW_BOUNDS_MS.min && ms <= WINDOW_BOUNDS_MS.max)) throw new WindowError(raw);
  return ms;
}

/** A duration in words for reports: `24 h`, `3.5 h`, `45 min`, `20 s`. */
export function formatDuration(ms: number): string {
  if (ms >= 3600000) return `${Math.round((ms / 3600000) * 10) / 10} h`;
  if (ms >= 60000) return `${Math.round((ms / 60000) * 10) / 10} min`;
  return `${Math.round(ms / 100) / 10} s`;
}
