import type { Mode } from '../../types/mode';
import type { WorkerConfig } from '../config';
import type { CycleReport, WorkerRole } from './cycle-report';
import type { WorkerHealthFacts } from './health';

/**
 * The latest cycle as the main thread sees it: the report without its budget records, which would
 * be copied across threads on every cycle (20,000 objects for 20,000 symbols) for nobody to read.
 */
export type CycleOutline = Omit<CycleReport, 'budgets'>;

/**
 * What the service and its HTTP API read from the budget worker: `BudgetWorker` itself when the
 * cycle runs in-process, `CycleThread` (the latest state the thread reported) when it runs in a
 * thread of its own.
 */
export interface CycleWorkerView {
  /** The effective mode of the latest cycle. */
  readonly mode: Mode;
  readonly role: WorkerRole;
  readonly healthFacts: WorkerHealthFacts;
  readonly lastSuccessAtMs: number | undefined;
  readonly lastCycle: CycleOutline | undefined;
}

/** What the main thread hands the cycle thread (`workerData`). */
export interface CycleThreadData {
  config: WorkerConfig;
  /** The level of the service's logger: the thread logs no line that would be dropped anyway. */
  logLevel: string;
  /** 0 for the first thread of the service, then 1, 2, ... for each one started after a crash. */
  incarnation: number;
}

/** Requests of the main thread, each answered by one `reply` with the same id. */
export type ThreadRequest =
  /** The thread's metrics in the Prometheus text format. */
  | { type: 'metrics-text'; id: number }
  /** One metric's values (`Metric.get()`), or undefined when the thread has no such metric. */
  | { type: 'metric'; id: number; name: string }
  /** Every metric's values (`Registry.getMetricsAsJSON()`). */
  | { type: 'metrics-json'; id: number };

export type ToCycleThread =
  | ThreadRequest
  /** Start the loop (once Redis is ready, or after `startupRedisWaitMs`). */
  | { type: 'start' }
  /** Stop the loop, let the running cycle finish, release the lease, close Redis, then say `stopped`. */
  | { type: 'stop' };

export type FromCycleThread =
  /** After the thread's setup (before its first cycle) and after every cycle. */
  | { type: 'state'; healthFacts: WorkerHealthFacts; lastCycle: CycleOutline | undefined; metricNames: string[] }
  /** One JSON log line of the thread's logger, to be written by the service's logger. */
  | { type: 'log'; line: string }
  | { type: 'reply'; id: number; value?: unknown; error?: string }
  | { type: 'stopped' };

/** The report without its budget records (see `CycleOutline`). */
export function outlineOf(report: CycleReport | undefined): CycleOutline | undefined {
  if (report === undefined) return undefined;
  const { budgets: _budgets, ...outline } = report;
  return outline;
}
