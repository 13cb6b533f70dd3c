import { collectDefaultMetrics, type Registry } from 'prom-client';
import { BudgetGate } from '../../plugin/budget-gate';
import { BudgetWorker } from './budget-worker';
import type { WorkerConfig } from '../config';
import type { HeatReader } from './sources/heat-source';
import { HTTP_SERVER_DEFAULTS, startHttpServer } from './http-server';
import { createLogger, type Logger } from '../logger';
import { createRedisClient, redactUrl, redisOptionsFromConfig, waitForReady, type RedisClient } from '../redis/client';
import { quitClient } from '../redis/quit';
import { WorkerMetrics } from './worker-metrics';
import { CauseLog } from '../cause-log';
import { redisErrorCause } from '../redis/error-cause';
import { AUTH_CAUSES, connectionProblem, describeConnectionProblem, trackConnectionProblems } from '../redis/connection-problem';
import { PACKAGE_VERSION } from '../package-version';
import { ServerClock, registerClockSkewGauge } from '../redis/server-clock';
import { RedisKeys } from '../redis/keys';
import { readinessContext } from '../readiness/context';
import { evaluateReadiness } from '../readiness/read-history';
import { evaluateHealth, type HealthReport } from './health';
import { CYCLE_THREAD_METRICS, CycleThread } from './cycle-thread';
import { metricOn } from '../registry-metrics';
import { MergedRegistry } from './merged-registry';
import type { CycleWorkerView } from './cycle-thread-protocol';
import { WORKER_SERVICE_DEFAULTS } from './service-defaults';

export { WORKER_SERVICE_DEFAULTS } from './service-defaults';
export type { CycleWorkerView, CycleOutline } from './cycle-thread-protocol';

export interface WorkerServiceOptions {
  /** Default: JSON logs on stdout at LOG_LEVEL. */
  logger?: Logger;
  /** Default: a `worker`-profile client built from the Redis settings of `config`; closed on stop. */
  redis?: RedisClient;
  /** Default: the P2.6 Heat Gate at HEAT_GATE_METRICS_URL. */
  heatSource?: HeatReader;
  /** Wall clock in epoch ms (default: Redis's clock, `ServerClock`, measured with TIME). */
  now?: () => number;
  /** Add Node.js process metrics (`process_*`, `nodejs_*`) to /metrics (default true). */
  processMetrics?: boolean;
  /**
   * The module the cycle thread runs (default: this package's `cycle-thread-entry`); a wrapper may
   * name its own module that loads that one. Ignored when the cycle runs in-process.
   */
  cycleThreadModule?: string;
}

export interface WorkerServiceHandle {
  /**
   * The budget worker as the HTTP API sees it: the `BudgetWorker` itself when the cycle runs
   * in-process, the state its thread reported last (after every cycle) otherwise.
   */
  readonly worker: CycleWorkerView;
  /** `registry` serves /metrics: the worker's metrics (from its thread, when it runs in one), the gate's and the process's. */
  readonly metrics: { readonly registry: Registry };
  /** The client of /health, the budget listings and the other HTTP reads (and of the cycle, in-process). */
  readonly redis: RedisClient;
  /** The gate behind `POST /v1/decisions`; its metrics are on `metrics.registry`. */
  readonly gate: BudgetGate;
  /** The port /health and /metrics listen on (useful with PORT=0). */
  readonly port: number;
  /** Where the cycle runs: `thread` (P28_CYCLE_THREAD=1, the default) or `in-process`. */
  readonly cycles: 'thread' | 'in-process';
  /**
   * Graceful shutdown: stops the loop, lets the running cycle finish, releases the lease, closes the
   * HTTP server and the Redis connection (unless it was passed in). Idempotent.
   */
  stop(): Promise<void>;
}

/** The cycle's side of the service: in-process, or in a thread of its own. */
interface Cycles {
  readonly where: 'thread' | 'in-process';
  readonly worker: CycleWorkerView;
  readonly registry: Registry;
  /** Why /health must be degraded whatever the worker's facts say (its thread crashed). */
  readonly problem: () => string | undefined;
  readonly run: () => void;
  readonly stop: () => Promise<void>;
}

/**
 * Runs the worker as a service: Redis client, budget worker with its loop and lease, and the HTTP
 * endpoints. Starting does not require Redis to be up: /health says 503 and cycles fail (and are
 * counted) until it answers, then the worker carries on without a restart.
 *
 * With P28_CYCLE_THREAD=1 (the default) the budget worker runs in a `worker_threads` thread of its
 * own (`CycleThread`), with its own Redis client and heat reader, and the HTTP API, the gate,
 * /health and /metrics keep the main thread's event loop to themselves. A Redis client, heat
 * reader or clock passed in cannot cross to a thread: with any of them the cycle runs in-process.
 */
export async function startWorkerService(config: WorkerConfig, options: WorkerServiceOptions = {}): Promise<WorkerServiceHandle> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const threaded = config.cycleThread && options.redis === undefined && options.heatSource === undefined && options.now === undefined;
  const ownsRedis = options.redis === undefined;
  // In a thread, the cycle has its own `p28-worker` client; this one serves the HTTP reads.
  const redis = options.redis ?? createRedisClient(redisOptionsFromConfig(config, `${threaded ? 'p28-http' : 'p28-worker'}:${config.instanceId}`));
  watchConnection(redis, logger, config);

  // One clock for every timestamp written and every age judged: Redis's (see ServerClock).
  const clock = new ServerClock(redis);
  const now = options.now ?? clock.now;
  let cycles: Cycles;
  try {
    cycles = threaded ? await threadCycles(config, logger, options.cycleThreadModule) : inProcessCycles(config, logger, redis, clock, now, options.heatSource);
  } catch (error) {
    if (ownsRedis) redis.disconnect();
    throw error;
  }
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: cycles.registry });

  // The gate of POST /v1/decisions: the plugin's own BudgetGate, so an HTTP caller gets the
  // decisions, breaker and fail-open of an embedded gate. It reads through a fail-fast client of
  // its own (the `gate` profile), so a slow worker cycle never queues a decision behind it.
  const gateRedis = ownsRedis
    ? createRedisClient({ ...redisOptionsFromConfig(config, `p28-api:${config.instanceId}`), profile: 'gate' })
    : (options.redis as RedisClient);
  if (ownsRedis) gateRedis.on('error', () => undefined);
  const gate = new BudgetGate({
    redis: gateRedis,
    keyPrefix: config.keyPrefix,
    registry: cycles.registry,
    logger,
    now,
    reservationTtlMs: Math.round(config.reservationTtlSec * 1000),
    decisionLogMaxLen: config.decisionLogMaxLen,
    instanceId: config.instanceId,
    via: 'http',
  });

  const keys = new RedisKeys(config.keyPrefix);
  const health = async (): Promise<HealthReport> => {
    const report = await evaluateHealth({
      redis,
      worker: cycles.worker,
      instanceId: config.instanceId,
      maxBudgetAgeSec: config.healthMaxBudgetAgeSec,
      now,
      redisPingTimeoutMs: HTTP_SERVER_DEFAULTS.redisPingTimeoutMs,
    });
    const problem = cycles.problem();
    if (problem === undefined || report.body.status === 'unhealthy') return report;
    return { code: 503, body: { ...report.body, status: 'degraded', reason: problem } };
  };
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    http = await startHttpServer({
      host: config.host,
      port: config.port,
      registry: cycles.registry,
      redis,
      worker: cycles.worker,
      health,
      gate,
      keyPrefix: config.keyPrefix,
      inputFamilies: config.inputFamilies,
      apiToken: config.apiToken,
      testMode: config.testMode,
      version: PACKAGE_VERSION,
      instanceId: config.instanceId,
      maxBudgetAgeSec: config.healthMaxBudgetAgeSec,
      readiness: (windowMs) => evaluateReadiness(redis, keys, readinessContext(config, windowMs, now())),
      now,
      logger,
    });
  } catch (error) {
    await cycles.stop();
    await gate.close();
    if (ownsRedis) {
      redis.disconnect();
      gateRedis.disconnect();
    }
    throw error;
  }

  await waitForReady(redis, WORKER_SERVICE_DEFAULTS.startupRedisWaitMs).catch(() => undefined);
  const problem = connectionProblem(redis);
  // Wrong credentials fail every cycle with a generic "not connected": say the cause once, plainly.
  if (problem && AUTH_CAUSES.has(problem.cause)) logger.error({ cause: problem.cause }, `${describeConnectionProblem(redactUrl(config.redisUrl), problem, '')}; every cycle fails until it is fixed`);
  clock.start();
  cycles.run();
  logger.info(
    {
      mode: config.mode,
      // A starting worker clears any run-time override in its first cycle: the mode starts from P28_MODE.
      mode_source: 'env',
      port: http.port,
      host: config.host,
      redis: redactUrl(config.redisUrl),
      instance: config.instanceId,
      intervalSec: config.computeIntervalSec,
      apiAuth: config.apiToken !== undefined,
      testMode: config.testMode,
      cycles: cycles.where,
    },
    `P2.8 Portfolio Risk Governor started (mode=${config.mode} from env P28_MODE, port=${http.port})`,
  );
  // The line the deployment guide's "expected output" shows, word for word.
  logger.info({ intervalSec: config.computeIntervalSec }, 'Starting budget compute loop');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info('stopping');
      await cycles.stop();
      clock.stop();
      await http.close();
      await gate.close();
      if (ownsRedis) await Promise.all([quitClient(redis, WORKER_SERVICE_DEFAULTS.quitTimeoutMs), quitClient(gateRedis, WORKER_SERVICE_DEFAULTS.quitTimeoutMs)]);
      logger.info('stopped');
    })());

  return { worker: cycles.worker, metrics: { registry: cycles.registry }, redis, gate, port: http.port, cycles: cycles.where, stop };
}

/** The budget worker on this thread, on the service's client and clock. */
function inProcessCycles(config: WorkerConfig, logger: Logger, redis: RedisClient, clock: ServerClock, now: () => number, heatSource: HeatReader | undefined): Cycles {
  const metrics = new WorkerMetrics();
  registerClockSkewGauge(metrics.registry, clock);
  const worker = new BudgetWorker({ config, redis, metrics, logger, heatSource, now, clock });
  return { where: 'in-process', worker, registry: metrics.registry, problem: () => undefined, run: () => worker.start(), stop: () => worker.stop() };
}

/** The budget worker in a thread of its own, loaded (its loop not yet started); its metrics merged into this thread's registry. */
async function threadCycles(config: WorkerConfig, logger: Logger, module: string | undefined): Promise<Cycles> {
  const thread = new CycleThread({ config, logger, module });
  await thread.load();
  const registry = new MergedRegistry(thread);
  metricOn(registry, CYCLE_THREAD_METRICS.restarts, function () {
    this.reset();
    this.inc(thread.restarts);
  });
  return { where: 'thread', worker: thread, registry, problem: () => thread.problem, run: () => thread.run(), stop: () => thread.stop() };
}

/** Logs connection problems once per change of cause with a count, not every reconnect attempt. */
function watchConnection(redis: RedisClient, logger: Logger, config: WorkerConfig): void {
  const problems = new CauseLog(logger);
  trackConnectionProblems(redis);
  const redisShown = redactUrl(config.redisUrl);
  redis.on('error', (error: Error) => {
    problems.problem(redisErrorCause(error), { err: error.message, redis: redisShown }, 'redis connection error');
  });
  redis.on('ready', () => {
    if (problems.state) problems.resolved({ redis: redisShown }, 'redis connected again');
    else logger.info({ redis: redisShown }, 'redis connected');
  });
}
