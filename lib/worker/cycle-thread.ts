import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Mode } from '../../types/mode';
import type { WorkerConfig } from '../config';
import type { Logger } from '../logger';
import type { WorkerRole } from './cycle-report';
import type { WorkerHealthFacts } from './health';
import { counter } from '../registry-metrics';
import { WORKER_SERVICE_DEFAULTS } from './service-defaults';
import type { ThreadMetrics } from './merged-registry';
import type { CycleOutline, CycleThreadData, CycleWorkerView, FromCycleThread, ThreadRequest, ToCycleThread } from './cycle-thread-protocol';

export interface CycleThreadOptions {
  config: WorkerConfig;
  /** The service's logger: it writes the thread's log lines, and the thread logs at its level. */
  logger: Logger;
  /**
   * The module the thread runs (default: this package's `cycle-thread-entry`, `.ts` under tsx,
   * `.js` when compiled). A wrapper may name its own module that loads that one.
   */
  module?: string;
}

type Unsent<T> = T extends unknown ? Omit<T, 'id'> : never;
type Values = MetricObjectWithValues<MetricValue<string>>;

/**
 * A Worker running `module`. TypeScript source (under tsx, in tests and `npm run` scripts) is
 * loaded through tsx's CommonJS hook, which a Worker does not inherit; compiled JavaScript as is.
 */
function startWorker(module: string, workerData: CycleThreadData): Worker {
  if (extname(module) !== '.ts') return new Worker(module, { workerData });
  const tsx = require.resolve('tsx/cjs');
  return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(module)});`, { eval: true, workerData });
}

/** One JSON line of the thread's logger, written again by the service's logger at its level. */
function relayLog(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const { level, time: _time, pid: _pid, hostname: _hostname, service: _service, msg, ...fields } = record;
  const label = (logger.levels.labels[Number(level)] ?? 'info') as 'info';
  logger[label](fields, typeof msg === 'string' ? msg : undefined);
}

/** The main thread's metric about its cycle thread, declared once (docs/metrics.md's table is generated from it). */
export const CYCLE_THREAD_METRICS = {
  restarts: counter({
    name: 'p28_cycle_thread_restarts_total',
    help: 'Cycle threads started again after one crashed (P28_CYCLE_THREAD=1); each crash is also logged at error and names itself in /health until the new thread runs.',
  }),
};

/**
 * The budget worker in a `worker_threads` Worker of its own (`cycle-thread-entry.ts`), seen from the
 * main thread: the state it reported last (for /health and the HTTP API), its metrics on request
 * (for /metrics), its log lines (written by the service's logger), a graceful stop, and crashes: a
 * thread that ends unexpectedly is logged, named by `problem` (so /health is degraded) and started
 * again after `threadRestartDelayMs`, doubled on every crash in a row up to `threadMaxRestartDelayMs`.
 */
export class CycleThread implements CycleWorkerView, ThreadMetrics {
  private readonly options: CycleThreadOptions;
  private thread: Worker | undefined;
  private facts: WorkerHealthFacts | undefined;
  private cycle: CycleOutline | undefined;
  private names: ReadonlySet<string> = new Set();
  private lastText = '';
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private crash: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDelayMs: number = WORKER_SERVICE_DEFAULTS.threadRestartDelayMs;
  private stopping: Promise<void> | undefined;
  private started = 0;
  /** Whether a thread has reported itself once: a thread that ends before is a failed start, not a crash. */
  private loaded = false;

  constructor(options: CycleThreadOptions) {
    this.options = options;
  }

  /**
   * Loads the thread; resolves once it has reported its first state (its loop not yet started:
   * `run()`), rejects when it ends before.
   */
  load(): Promise<void> {
    const thread = this.spawn();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`the cycle thread did not start within ${WORKER_SERVICE_DEFAULTS.threadStartTimeoutMs} ms`)), WORKER_SERVICE_DEFAULTS.threadStartTimeoutMs);
      const onState = (message: FromCycleThread): void => {
        if (message.type !== 'state') return;
        done();
        resolve();
      };
      let error: Error | undefined;
      const onError = (e: Error): void => void (error = e);
      const onExit = (code: number): void => fail(error ?? new Error(`the cycle thread exited with code ${code} before it started`));
      const done = (): void => {
        clearTimeout(timer);
        thread.off('message', onState).off('error', onError).off('exit', onExit);
      };
      const fail = (e: Error): void => {
        done();
        this.stopping = Promise.resolve();
        void thread.terminate();
        reject(e);
      };
      thread.on('message', onState).on('error', onError).once('exit', onExit);
    });
  }

  /** Starts the loaded thread's loop. */
  run(): void {
    this.post({ type: 'start' });
  }

  /** Threads started after a crash. */
  get restarts(): number {
    return Math.max(0, this.started - 1);
  }

  /** Why no cycle thread runs now (it crashed and is being restarted); undefined while one runs. */
  get problem(): string | undefined {
    return this.crash;
  }

  get healthFacts(): WorkerHealthFacts {
    if (this.facts === undefined) throw new Error('the cycle thread has not started');
    return this.facts;
  }

  get mode(): Mode {
    return this.healthFacts.mode;
  }

  get role(): WorkerRole {
    return this.healthFacts.role;
  }

  get lastSuccessAtMs(): number | undefined {
    return this.healthFacts.lastSuccessAtMs;
  }

  get lastCycle(): CycleOutline | undefined {
    return this.cycle;
  }

  /** The thread's metrics as exposition text; the last ones received when it does not answer in time, none while no thread runs. */
  async metricsText(): Promise<string> {
    if (this.thread === undefined) return '';
    try {
      this.lastText = (await this.request({ type: 'metrics-text' }, WORKER_SERVICE_DEFAULTS.threadMetricsTimeoutMs)) as string;
    } catch {
      // A thread busy past the time limit: its previous figures, rather than a hole in the series.
    }
    return this.lastText;
  }

  metricNames(): ReadonlySet<string> {
    return this.names;
  }

  async metricValues(name: string): Promise<Values | undefined> {
    return (await this.request({ type: 'metric', name }, WORKER_SERVICE_DEFAULTS.threadMetricsTimeoutMs)) as Values | undefined;
  }

  async metricsJson(): Promise<Values[]> {
    if (this.thread === undefined) return [];
    return (await this.request({ type: 'metrics-json' }, WORKER_SERVICE_DEFAULTS.threadMetricsTimeoutMs)) as Values[];
  }

  /** Stops the loop, lets the running cycle finish and releases the lease (in the thread), then ends the thread. Idempotent. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      if (this.restartTimer) clearTimeout(this.restartTimer);
      const thread = this.thread;
      if (thread === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      const stopped = new Promise<void>((resolve) => {
        thread.on('message', (message: FromCycleThread) => message.type === 'stopped' && resolve());
        thread.once('exit', () => resolve());
        timer = setTimeout(() => {
          this.options.logger.error({ timeoutMs: WORKER_SERVICE_DEFAULTS.threadStopTimeoutMs }, 'the cycle thread did not stop in time; terminating it');
          resolve();
        }, WORKER_SERVICE_DEFAULTS.threadStopTimeoutMs);
      });
      this.post({ type: 'stop' });
      await stopped;
      clearTimeout(timer);
      await thread.terminate();
    })());
  }

  private spawn(): Worker {
    const module = this.options.module ?? join(__dirname, `cycle-thread-entry${extname(__filename)}`);
    const thread = startWorker(module, { config: this.options.config, logLevel: this.options.logger.level, incarnation: this.started });
    this.started += 1;
    this.thread = thread;
    let error: Error | undefined;
    thread.on('message', (message: FromCycleThread) => this.receive(message));
    thread.on('error', (e: Error) => void (error = e));
    thread.once('exit', (code) => this.exited(thread, code, error));
    return thread;
  }

  private receive(message: FromCycleThread): void {
    if (message.type === 'log') return relayLog(this.options.logger, message.line);
    if (message.type === 'state') {
      this.loaded = true;
      this.facts = message.healthFacts;
      this.cycle = message.lastCycle;
      this.names = new Set(message.metricNames);
      if (this.crash !== undefined) this.options.logger.info({ restarts: this.restarts }, 'cycle thread running again');
      this.crash = undefined;
      // A thread that got through a cycle is no longer crashing in a row.
      if (message.lastCycle !== undefined) this.restartDelayMs = WORKER_SERVICE_DEFAULTS.threadRestartDelayMs;
      return;
    }
    if (message.type !== 'reply') return;
    const waiting = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (message.error !== undefined) waiting?.reject(new Error(message.error));
    else waiting?.resolve(message.value);
  }

  private exited(thread: Worker, code: number, error: Error | undefined): void {
    if (this.thread !== thread) return;
    this.thread = undefined;
    this.lastText = '';
    for (const waiting of this.pending.values()) waiting.reject(new Error('the cycle thread ended'));
    this.pending.clear();
    if (this.stopping || !this.loaded) return;
    this.crashed(error ? error.message : `exit code ${code}`, { err: error, exitCode: code });
  }

  /** Logs the crash, names it for /health and starts a new thread after the delay. */
  private crashed(why: string, fields: Record<string, unknown>): void {
    const delayMs = this.restartDelayMs;
    this.restartDelayMs = Math.min(delayMs * 2, WORKER_SERVICE_DEFAULTS.threadMaxRestartDelayMs);
    this.crash = `the cycle thread crashed (${why.slice(0, 200)}); restarting it`;
    this.options.logger.error({ ...fields, restartInMs: delayMs, restarts: this.restarts }, `cycle thread crashed; no cycle runs until it is restarted in ${delayMs} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      try {
        this.spawn();
        this.run();
      } catch (error) {
        this.crashed((error as Error).message, { err: error });
      }
    }, delayMs);
  }

  private request(message: Unsent<ThreadRequest>, timeoutMs: number): Promise<unknown> {
    const id = (this.nextId += 1);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the cycle thread did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = <T>(f: (value: T) => void) => (value: T): void => {
        clearTimeout(timer);
        f(value);
      };
      this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      if (!this.post({ ...message, id } as ThreadRequest)) this.pending.get(id)?.reject(new Error('no cycle thread runs'));
    });
  }

  private post(message: ToCycleThread): boolean {
    if (this.thread === undefined) return false;
    this.thread.postMessage(message);
    return true;
  }
}
