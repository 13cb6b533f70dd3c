import type { Counter, Registry } from 'prom-client';
import { counter, metricOn } from '../registry-metrics';
import type { Logger } from '../logger';

/** Which kind of key a problem is about. */
export const KEY_KINDS = ['budget', 'heartbeat', 'violation_stream', 'mode_audit_stream', 'mode_override'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

/** What is wrong with it: another type than the package reads or writes there, or a timestamp ahead of Redis's clock. */
export const KEY_PROBLEMS = ['wrong_type', 'from_the_future'] as const;

/** The metric of skipped keys, declared once (docs/metrics.md's worker table is generated from it). */
export const KEY_PROBLEM_METRICS = {
  invalidKeys: counter({
    name: 'p28_invalid_keys_total',
    help: 'Keys the worker skipped because they hold another type than expected (problem wrong_type) or a timestamp ahead of Redis\'s clock (heartbeat, from_the_future), once per key per cycle. Only the symbol or feature of that key is lost: the cycle stays ok and /health names the keys without degrading; DEL the key named in the log or /health. All series start at 0.',
    labelNames: ['key_kind', 'problem'],
    labelValues: { key_kind: KEY_KINDS, problem: KEY_PROBLEMS },
  }),
};
export type KeyProblem = (typeof KEY_PROBLEMS)[number];

export interface KeyProblemNote {
  kind: KeyKind;
  problem: KeyProblem;
  key: string;
  detail?: string;
}

/** How many keys a cycle names in its log line and in /health; the counter counts them all. */
const NAMED_KEYS = 20;

/**
 * Keys that cost only themselves: a key of the wrong type (a string where a hash or a stream is
 * expected) or a heartbeat from the future is counted in `p28_invalid_keys_total{key_kind,problem}`,
 * named in the cycle's log (once per change of the set of keys) and in /health, and otherwise
 * skipped: the symbol or the feature it serves is lost, the cycle is not. An operator fixes it with
 * `DEL` of the key named.
 */
export class KeyProblems {
  private readonly counter: Counter<'key_kind' | 'problem'>;
  private readonly logger: Logger;
  private pending: KeyProblemNote[] = [];
  private latest: KeyProblemNote[] = [];
  private lastLogged = '';

  constructor(registry: Registry, logger: Logger) {
    this.logger = logger;
    const existing = registry.getSingleMetric(KEY_PROBLEM_METRICS.invalidKeys.name);
    this.counter = metricOn(registry, KEY_PROBLEM_METRICS.invalidKeys);
    if (!existing) for (const kind of KEY_KINDS) for (const problem of KEY_PROBLEMS) this.counter.labels(kind, problem).inc(0);
  }

  /** One key found wrong in the current cycle. */
  note(entry: KeyProblemNote): void {
    this.counter.labels(entry.kind, entry.problem).inc();
    this.pending.push(entry);
  }

  /** Ends a cycle: what it found becomes what /health names, and a change of the set is logged. */
  endCycle(): void {
    this.latest = this.pending;
    this.pending = [];
    const names = this.latest.slice(0, NAMED_KEYS).map((k) => `${k.key} (${k.problem})`);
    const signature = `${this.latest.length}:${names.join(',')}`;
    if (signature === this.lastLogged) return;
    this.lastLogged = signature;
    if (this.latest.length === 0) this.logger.info('no invalid keys any more');
    else this.logger.warn({ count: this.latest.length, keys: this.latest.slice(0, NAMED_KEYS) }, `invalid keys skipped: ${names.join(', ')}; DEL them (only their own symbol or feature is affected)`);
  }

  /** The keys the last cycle found wrong (at most `NAMED_KEYS`), for /health. */
  get current(): readonly KeyProblemNote[] {
    return this.latest.slice(0, NAMED_KEYS);
  }

  get currentCount(): number {
    return this.latest.length;
  }
}
