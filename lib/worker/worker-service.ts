import { collectDefaultMetrics } from 'prom-client';
import { BudgetGate } from '../../plugin/budget-gate';
import { BudgetWorker } from './budget-worker';
import type { WorkerConfig } from '../config';
import type { HeatReader } from './sources/heat-source';
import { startHttpServer } from './http-server';
import { createLogger, type Logger } from '../logger';
import { createRedisClient, redactUrl, redisOptionsFromConfig, waitForReady, type RedisClient } from '../redis/client';
import { WorkerMetrics } from './worker-metrics';
import { CauseLog } from '../cause-log';
import { redisErrorCause } from '../redis/error-cause';
import { AUTH_CAUSES, connectionProblem, describeConnectionProblem, trackConnectionProblems } from '../redis/connection-problem';
import { PACKAGE_VERSION } from '../package-version';
import { ServerClock, registerClockSkewGauge } from '../redis/server-clock';
import { RedisKeys } from '../redis/keys';
import { readinessContext } from '../readiness/context';
import { evaluateReadiness } from '../readiness/read-history';

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
}

export interface WorkerServiceHandle {
  readonly worker: BudgetWorker;
  readonly metrics: WorkerMetrics;
  readonly redis: RedisClient;
  /** The gate behind `POST /v1/decisions`; its metrics are on `metrics.registry`. */
  readonly gate: BudgetGate;
  /** The port /health and /metrics listen on (useful with PORT=0). */
  readonly port: number;
  /**
   * Graceful shutdown: stops the loop, lets the running cycle finish, releases the lease, closes the
   * HTTP server and the Redis connection (unless it was passed in). Idempotent.
   */
  stop(): Promise<void>;
}

export const WORKER_SERVICE_DEFAULTS = Object.freeze({
  /** How long the first cycle waits for Redis at start; after that, cycles fail until it answers. */
  startupRedisWaitMs: 2000,
  /** How long QUIT may take at shutdown before the connection is dropped. */
  quitTimeoutMs: 1000,
});

/**
 * Runs the worker as a service: Redis client, budget worker with its loop and lease, and the HTTP
 * endpoints. Starting does not require Redis to be up: /health says 503 and cycles fail (and are
 * counted) until it answers, then the worker carries on without a restart.
 */
export async function startWorkerService(config: WorkerConfig, options: WorkerServiceOptions = {}): Promise<WorkerServiceHandle> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const ownsRedis = options.redis === undefined;
  const redis =
    options.redis ??
    createRedisClient(redisOptionsFromConfig(config, `p28-worker:${config.instanceId}`));
  watchConnection(redis, logger, config);

  const metrics = new WorkerMetrics();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: metrics.registry });
  // One clock for every timestamp written and every age judged: Redis's (see ServerClock).
  const clock = new ServerClock(redis);
  registerClockSkewGauge(metrics.registry, clock);
  const now = options.now ?? clock.now;
  const worker = new BudgetWorker({ config, redis, metrics, logger, heatSource: options.heatSource, now, clock });

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
    registry: metrics.registry,
    logger,
    now,
    decisionLogMaxLen: config.decisionLogMaxLen,
    instanceId: config.instanceId,
    via: 'http',
  });

  const keys = new RedisKeys(config.keyPrefix);
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    http = await startHttpServer({
      host: config.host,
      port: config.port,
      registry: metrics.registry,
      redis,
      worker,
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
  worker.start();
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
    },
    `P2.8 Portfolio Risk Governor started (mode=${config.mode} from env P28_MODE, port=${http.port})`,
  );
  // The line the deployment guide's "expected output" shows, word for word.
  logger.info({ intervalSec: config.computeIntervalSec }, 'Starting budget compute loop');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info('stopping');
      await worker.stop();
      clock.stop();
      await http.close();
      await gate.close();
      if (ownsRedis) await Promise.all([quit(redis), quit(gateRedis)]);
      logger.info('stopped');
    })());

  return { worker, metrics, redis, gate, port: http.port, stop };
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

/** QUIT (letting pending replies arrive), falling back to dropping the connection after `quitTimeoutMs`. */
async function quit(redis: RedisClient): Promise<void> {
  const hasEnded = (): boolean => redis.status === 'end';
  if (hasEnded()) return;
  const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
  if (redis.status === 'ready') redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, WORKER_SERVICE_DEFAULTS.quitTimeoutMs);
  });
  await Promise.race([ended, timedOut]);
  clearTimeout(timer);
  if (!hasEnded()) redis.disconnect();
}
