import type { Registry } from 'prom-client';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';
import { withScripts } from '../lib/redis/lua-scripts';
import { counter, metricOn } from '../lib/registry-metrics';
import type { DecisionLogVia } from '../types/decision-log-entry';
import type { GateDecision, PermitRequest } from '../types/permit';
import type { DecisionPolicy } from './decide';
import { captureDecision, DecisionLogEncoder } from './decision-log-encoding';
import { duplicateForLog } from './decision-log-connection';
import { DecisionPacker } from './decision-log-packer';

export const DECISION_LOG_DEFAULTS = Object.freeze({
  /**
   * Entries held in memory at most, waiting to be written. Past it an entry is dropped and counted:
   * the log never grows the gate's memory without bound, whatever Redis does.
   */
  queueCapacity: 10000,
  /** Entries per write (one command, `append-decisions-1.lua`); one write is in flight at a time. */
  batchEntries: 256,
  /** How long the first entry of a batch waits for others, in ms: fewer, larger writes meet fewer decisions. */
  flushDelayMs: 50,
  /**
   * How long a batch that fell due waits for the next decision to be answered, in ms: it goes out
   * right after that answer, when the next decision is furthest away; without one, after this.
   */
  afterDecisionWaitMs: 10,
  /** While the log's connection is not ready, how often to look again, in ms. */
  retryDelayMs: 100,
  /**
   * Time limit of one write, in ms. Past it the batch counts as dropped (Redis may still apply it
   * later: "dropped" means "not confirmed"), and the next batch goes out.
   */
  writeTimeoutMs: 2000,
  /** How long `close()` waits for the entries still queued to be written, in ms, unless told otherwise. */
  closeWaitMs: 1000,
});

/** Why an entry was dropped: the label values of `p28_decision_log_dropped_total{cause}`. */
export const DECISION_LOG_DROP_CAUSES = ['queue_full', 'write_failed', 'closed'] as const;

/** The decision log's metrics, declared once (docs/metrics.md's table is generated from them). */
export const DECISION_LOG_METRICS = {
  dropped: counter({
    name: 'p28_decision_log_dropped_total',
    help: 'Gate decisions not written to the decision log, by cause: queue_full (Redis slow or down and the in-memory queue full), write_failed (a write Redis did not confirm), closed (queued when the gate closed). Decisions themselves are never affected.',
    labelNames: ['cause'],
    labelValues: { cause: DECISION_LOG_DROP_CAUSES },
  }),
  written: counter({ name: 'p28_decision_log_written_total', help: 'Gate decisions written to the decision log (quantum:stream:p28.decisions).' }),
};
export type DecisionLogDropCause = (typeof DECISION_LOG_DROP_CAUSES)[number];

export interface DecisionLogOptions {
  /** The gate's client: the log writes through a connection of its own made from it (`duplicate()`). */
  client: RedisClient;
  /** `quantum:stream:p28.decisions` under the gate's key prefix. */
  streamKey: string;
  /** Approximate length bound of the stream (XADD MAXLEN ~), > 0. */
  maxLen: number;
  /** The gate instance named in every entry. */
  instanceId: string;
  via: DecisionLogVia;
  /** The gate's decision settings, logged with each decision so that a replay uses the same. */
  policy: Readonly<DecisionPolicy>;
  registry: Registry;
  logger: Logger;
  queueCapacity?: number;
  batchEntries?: number;
  flushDelayMs?: number;
  afterDecisionWaitMs?: number;
}

/**
 * The gate's decision log: every decision appended to `quantum:stream:p28.decisions`, off the
 * decision's path. `append` takes a copy of the request as judged, of the decision and of the inputs
 * it used, and returns; after the decision's caller has its answer (`setImmediate`) the copies are
 * packed into one string each, in a bounded in-memory queue; a timer writes the queue in batches of one command each
 * (`append-decisions-1.lua`: XADD MAXLEN ~ per entry) through a connection of the log's own, so a
 * batch never sits in front of a budget read on the gate's connection. One batch is in flight at a
 * time. When Redis is slow or down the queue fills and further entries are
 * dropped; every dropped entry is counted in `p28_decision_log_dropped_total{cause}`. No decision
 * ever waits for the log, and nothing the log does can change a decision.
 */
export class DecisionLog {
  /** Entries waiting to be written, already packed: the queue holds one string per decision. */
  private readonly queue: string[] = [];
  /** Decisions taken and not yet packed (`DecisionPacker`). */
  private readonly packer: DecisionPacker;
  private readonly capacity: number;
  private readonly batchEntries: number;
  private readonly flushDelayMs: number;
  private readonly afterDecisionWaitMs: number;
  private readonly encoder: DecisionLogEncoder;
  private writer: RedisClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A batch fell due and waits for the next decision's answer (`afterDecisionWaitMs` at most). */
  private due = false;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private readonly dropped: Record<DecisionLogDropCause, number> = { queue_full: 0, write_failed: 0, closed: 0 };
  private written = 0;
  private lastWriteFailed = false;
  private unusable = false;

  constructor(private readonly options: DecisionLogOptions) {
    this.capacity = options.queueCapacity ?? DECISION_LOG_DEFAULTS.queueCapacity;
    this.batchEntries = options.batchEntries ?? DECISION_LOG_DEFAULTS.batchEntries;
    this.flushDelayMs = options.flushDelayMs ?? DECISION_LOG_DEFAULTS.flushDelayMs;
    this.afterDecisionWaitMs = options.afterDecisionWaitMs ?? DECISION_LOG_DEFAULTS.afterDecisionWaitMs;
    this.encoder = new DecisionLogEncoder(options.instanceId, options.via, options.policy);
    this.packer = new DecisionPacker(
      this.encoder,
      this.queue,
      // Called right after decisions were answered and packed: a due batch goes out now.
      () => {
        if (this.due) this.writeDue();
        else if (this.queue.length > 0 && this.timer === undefined && this.inFlight === undefined && !this.closed) this.schedule(this.flushDelayMs);
      },
      () => {
        this.dropped.write_failed += 1;
      },
    );
    const sources = registrySources(options.registry);
    sources.add(this);
    metricOn(options.registry, DECISION_LOG_METRICS.dropped, function collect() {
      this.reset();
      for (const cause of DECISION_LOG_DROP_CAUSES) {
        let n = 0;
        for (const log of sources) n += log.dropped[cause];
        this.labels(cause).inc(n);
      }
    });
    metricOn(options.registry, DECISION_LOG_METRICS.written, function collect() {
      this.reset();
      let n = 0;
      for (const log of sources) n += log.written;
      this.inc(n);
    });
  }

  /** Entries waiting in memory, packed or not (at most the queue capacity). */
  get pending(): number {
    return this.queue.length + this.packer.length;
  }

  /** Entries dropped so far, by cause. */
  get droppedCount(): Readonly<Record<DecisionLogDropCause, number>> {
    return this.dropped;
  }

  /** Entries Redis confirmed so far. */
  get writtenCount(): number {
    return this.written;
  }

  /**
   * Queues one decision. O(1) and never throws on bad input: the request is copied (its own
   * properties) and so is the decision, with the hash fields noted on it (`noteDecisionInputs`).
   * `plan`, when given, is the request as the gate read it, an object of its own: taken as it is.
   */
  append(req: unknown, decision: GateDecision, tsMs: number, forceShadow: boolean, plan?: PermitRequest): void {
    if (this.closed) {
      this.dropped.closed += 1;
      return;
    }
    if (this.queue.length + this.packer.length >= this.capacity) {
      this.dropped.queue_full += 1;
      return;
    }
    // Copied now, while the request is what was judged (a caller may reuse its object); packed
    // after the caller has its decision, so the queue holds one short string per entry.
    this.packer.add(captureDecision(req, decision, tsMs, forceShadow, plan));
  }

  /**
   * Writes what is queued while its connection is ready, waiting at most `waitMs` (the gate passes
   * its `timeoutMs`: closing never waits on a slow Redis), then closes the log's connection.
   * Entries still queued after that are counted as dropped (`closed`).
   */
  async close(waitMs: number = DECISION_LOG_DEFAULTS.closeWaitMs): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.packer.packAll();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.due = false;
    const deadline = performance.now() + waitMs;
    const client = this.writer;
    const timeLeft = () => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, deadline - performance.now())).unref());
    while ((this.queue.length > 0 || this.inFlight) && performance.now() < deadline && client?.status === 'ready') {
      await Promise.race([this.inFlight ?? this.writeBatch(), timeLeft()]);
    }
    if (this.queue.length > 0) {
      this.dropped.closed += this.queue.length;
      this.queue.length = 0;
    }
    registrySources(this.options.registry).delete(this);
    this.writer?.disconnect();
  }

  /**
   * Makes the next batch due after `delayMs`. A due batch is written right after the next decision
   * is answered (the packer's turn, `writeDue`): at a Governor's pace that is when the next decision
   * is furthest away, so the batch's XADDs rarely meet one on the Redis server. Without a decision
   * within `afterDecisionWaitMs` it goes out anyway, from the check phase of that turn of the event
   * loop (`setImmediate`): a decision whose timer or socket event falls due in the same turn sends
   * its read first.
   */
  private schedule(delayMs: number): void {
    this.timer = setTimeout(this.fallDue, delayMs);
    this.timer.unref();
  }

  private readonly fallDue = (): void => {
    this.due = true;
    this.timer = setTimeout(() => setImmediate(this.writeDue).unref(), this.afterDecisionWaitMs);
    this.timer.unref();
  };

  private readonly writeDue = (): void => {
    if (!this.due) return;
    this.due = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    void this.writeBatch();
  };

  /** The log's own connection, made at the first write; undefined when the gate's client cannot make one. */
  private connection(): RedisClient | undefined {
    if (this.writer === undefined && !this.unusable) {
      try {
        this.writer = duplicateForLog(this.options.client, this.options.logger, DECISION_LOG_DEFAULTS.writeTimeoutMs);
        // Entries queued while the connection was being made go out as soon as it is ready.
        this.writer.on('ready', () => {
          if (this.queue.length > 0 && this.timer === undefined && this.inFlight === undefined && !this.closed) this.schedule(0);
        });
      } catch (error) {
        this.unusable = true;
        this.options.logger.warn({ err: (error as Error).message }, 'decision log: no connection can be made from the gate\'s client; entries are dropped and counted');
      }
    }
    return this.writer;
  }

  /** Writes one batch, then schedules the next while entries are queued. Never rejects. */
  private writeBatch(): Promise<void> {
    if (this.inFlight || this.queue.length === 0) return this.inFlight ?? Promise.resolve();
    const client = this.connection();
    if (client === undefined) {
      this.settle(this.queue.length, this.queue.length);
      this.queue.length = 0;
      return Promise.resolve();
    }
    if (client.status !== 'ready') {
      // Entries wait (within the queue's bound) for the connection rather than being dropped at once.
      if (!this.closed) this.schedule(DECISION_LOG_DEFAULTS.retryDelayMs);
      return Promise.resolve();
    }
    const batch = this.queue.splice(0, this.batchEntries);
    let write: Promise<void>;
    try {
      write = withScripts(client)
        .p28AppendDecisions(this.options.streamKey, this.options.maxLen, ...batch)
        .then(
          (appended) => this.settle(batch.length, batch.length - Math.min(batch.length, Number(appended) || 0)),
          () => this.settle(batch.length, batch.length),
        );
    } catch {
      write = Promise.resolve(this.settle(batch.length, batch.length));
    }
    this.inFlight = write.finally(() => {
      this.inFlight = undefined;
      if (this.queue.length > 0 && this.timer === undefined && !this.closed) this.schedule(0);
    });
    return this.inFlight;
  }

  private settle(entries: number, failed: number): void {
    this.written += entries - failed;
    this.dropped.write_failed += failed;
    if ((failed > 0) !== this.lastWriteFailed) {
      this.lastWriteFailed = failed > 0;
      if (failed > 0) this.options.logger.warn({ failed }, 'decision log: a write failed; its entries are counted in p28_decision_log_dropped_total');
      else this.options.logger.info('decision log: writing again');
    }
  }
}

/** The logs writing on each registry, whose counts its two counters add up at scrape time. */
const sourcesByRegistry = new WeakMap<Registry, Set<DecisionLog>>();

function registrySources(registry: Registry): Set<DecisionLog> {
  let sources = sourcesByRegistry.get(registry);
  if (!sources) {
    sources = new Set();
    sourcesByRegistry.set(registry, sources);
  }
  return sources;
}
