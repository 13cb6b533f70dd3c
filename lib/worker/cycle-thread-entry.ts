import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BudgetWorker } from './budget-worker';
import { CycleLoop } from './cycle/cycle-loop';
import { createLogger, type LogLevel } from '../logger';
import { routeConsoleToLogger } from '../console-capture';
import { createRedisClient, redisOptionsFromConfig, waitForReady } from '../redis/client';
import { quitClient } from '../redis/quit';
import { ServerClock, registerClockSkewGauge } from '../redis/server-clock';
import { WorkerMetrics } from './worker-metrics';
import { WORKER_SERVICE_DEFAULTS } from './service-defaults';
import { outlineOf, type CycleThreadData, type FromCycleThread, type ThreadRequest, type ToCycleThread } from './cycle-thread-protocol';

/**
 * The cycle thread: the budget worker with its loop, lease, heat reader, metrics and a Redis client
 * of its own, run in a `worker_threads` Worker started by `CycleThread`, so that its reads, compute,
 * writes and garbage never hold up the HTTP decisions on the main thread. It reports its state after
 * every cycle, answers the main thread's metric requests, and sends its log lines to be written there.
 * Its loop starts on the main thread's `start`, its stop on `stop`.
 */
/**
 * Lowers this thread's scheduling priority to `nice` (Linux: the nice value is a per-thread
 * attribute, and `/proc/thread-self` names this thread's id). When the cores are busy, the main
 * thread, which answers decisions, then runs first and the cycle takes longer; when they are not,
 * nothing changes. Elsewhere, a no-op.
 */
function lowerPriority(nice: number): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return undefined;
    setPriority(tid, nice);
    return nice;
  } catch {
    return undefined;
  }
}

function runCycleThread(port: NonNullable<typeof parentPort>, data: CycleThreadData): void {
  const send = (message: FromCycleThread): void => port.postMessage(message);
  const { config } = data;
  const logger = createLogger(data.logLevel as LogLevel, { write: (line: string) => send({ type: 'log', line }) });
  // A library's console lines (ioredis's warnings) would reach stdout raw, through the main thread's pipe.
  routeConsoleToLogger(logger);
  // The main thread's client watches the connection and logs its problems: this one stays quiet.
  const redis = createRedisClient(redisOptionsFromConfig(config, `p28-worker:${config.instanceId}`));
  redis.on('error', () => undefined);
  const metrics = new WorkerMetrics();
  const clock = new ServerClock(redis);
  registerClockSkewGauge(metrics.registry, clock);

  const report = (): void =>
    send({
      type: 'state',
      healthFacts: worker.healthFacts,
      lastCycle: outlineOf(worker.lastCycle),
      metricNames: metrics.registry.getMetricsAsArray().map((m) => m.name),
    });
  const worker = new BudgetWorker({ config, redis, metrics, logger, now: clock.now, clock });
  // The worker's loop, with the state reported as soon as each cycle ends.
  const loop = new CycleLoop(() => worker.runOnce().finally(report), config.computeIntervalSec * 1000);

  const answer = async (request: ThreadRequest): Promise<unknown> => {
    if (request.type === 'metrics-text') return metrics.registry.metrics();
    if (request.type === 'metrics-json') return metrics.registry.getMetricsAsJSON();
    return metrics.registry.getSingleMetric(request.name)?.get();
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await loop.stop();
      await worker.stop();
      clock.stop();
      await quitClient(redis, WORKER_SERVICE_DEFAULTS.quitTimeoutMs);
      send({ type: 'stopped' });
    })());
  const nice = lowerPriority(WORKER_SERVICE_DEFAULTS.threadNice);
  if (nice !== undefined) logger.debug({ nice }, 'cycle thread priority lowered');
  const start = async (): Promise<void> => {
    await waitForReady(redis, WORKER_SERVICE_DEFAULTS.startupRedisWaitMs).catch(() => undefined);
    if (stopping) return;
    clock.start();
    loop.start();
  };
  port.on('message', (message: ToCycleThread) => {
    if (message.type === 'stop') return void stop();
    if (message.type === 'start') return void start();
    answer(message).then(
      (value) => send({ type: 'reply', id: message.id, value }),
      (error: unknown) => send({ type: 'reply', id: message.id, error: error instanceof Error ? error.message : String(error) }),
    );
  });

  report();
}

if (!isMainThread && parentPort) runCycleThread(parentPort, workerData as CycleThreadData);
