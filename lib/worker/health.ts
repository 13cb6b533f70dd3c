import type { Mode } from '../../types/mode';
import type { CycleResult } from './cycle-report';
import type { RedisClient } from '../redis/client';
import { SERVICE_NAME } from '../logger';

/** The body of GET /health. */
export interface HealthBody {
  status: 'healthy' | 'unhealthy';
  service: typeof SERVICE_NAME;
  /** The effective mode of this replica's latest cycle. */
  mode: Mode;
  redis: 'connected' | 'disconnected';
  role: 'leader' | 'standby';
  /** Seconds since the last cycle that ended ok or standby; null before the first. */
  last_success_age_sec: number | null;
  last_cycle_result: CycleResult | null;
  instance: string;
}

/** What /health reports about the worker; `BudgetWorker` provides it. */
export interface HealthSource {
  readonly mode: Mode;
  readonly role: 'leader' | 'standby';
  readonly lastSuccessAtMs: number | undefined;
  readonly lastCycle: { result: CycleResult } | undefined;
}

/** What `evaluateHealth` needs besides the worker. */
export interface HealthContext {
  redis: RedisClient;
  worker: HealthSource;
  instanceId: string;
  /** Wall clock in epoch ms, the same as the worker's. */
  now: () => number;
  /** How long to wait for Redis to answer PING before reporting it disconnected. */
  redisPingTimeoutMs: number;
}

/** The verdict of a health check: the HTTP status and the body. */
export interface HealthReport {
  code: 200 | 503;
  body: HealthBody;
}

/** Whether Redis answers PING within `timeoutMs`. */
async function redisAnswers(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([client.ping().then((reply) => reply === 'PONG', () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The worker's health: 200 `healthy` while Redis answers PING within the time limit, 503
 * `unhealthy` when it does not, with the mode, role and age of the last successful cycle either way.
 */
export async function evaluateHealth(ctx: HealthContext): Promise<HealthReport> {
  const connected = await redisAnswers(ctx.redis, ctx.redisPingTimeoutMs);
  const lastSuccess = ctx.worker.lastSuccessAtMs;
  const body: HealthBody = {
    status: connected ? 'healthy' : 'unhealthy',
    service: SERVICE_NAME,
    mode: ctx.worker.mode,
    redis: connected ? 'connected' : 'disconnected',
    role: ctx.worker.role,
    last_success_age_sec: lastSuccess === undefined ? null : Math.max(0, Math.round((ctx.now() - lastSuccess) / 100) / 10),
    last_cycle_result: ctx.worker.lastCycle?.result ?? null,
    instance: ctx.instanceId,
  };
  return { code: connected ? 200 : 503, body };
}
