import type { Mode } from '../../types/mode';
import type { RedisClient } from '../redis/client';
import { redisErrorCodeIn } from '../redis/error-cause';
import { AUTH_CAUSES, connectionProblem, type ConnectionProblem } from '../redis/connection-problem';
import { SERVICE_NAME } from '../logger';
import type { CycleResult, WorkerRole } from './cycle-report';
import type { ModeSource } from './mode-switch';
import type { FutureHeartbeat } from './heartbeat-check';
import type { KeyProblemNote } from './key-problems';

/** Failed cycles in a row after which a replica reports itself degraded. */
export const FAILED_CYCLES_DEGRADED = 3;

/** What a worker knows about itself that /health reports; `BudgetWorker.healthFacts` provides it. */
export interface WorkerHealthFacts {
  mode: Mode;
  modeSource: ModeSource;
  role: WorkerRole;
  /** Epoch ms of the latest budgets written by any replica (the heartbeat); undefined when none is known. */
  budgetsWrittenAtMs: number | undefined;
  /** Epoch ms at which this worker was created: before the first heartbeat, budgets are missing since then. */
  startedAtMs: number;
  /** Epoch ms at which this replica's last cycle ended ok or standby. */
  lastSuccessAtMs: number | undefined;
  lastCycleResult: CycleResult | undefined;
  /** This replica's failed cycles in a row, and the error of the latest. */
  failedInARow: number;
  lastError: string | undefined;
  /** A short name of why the latest cycle failed (`NOPERM`, `OOM`, `TIMEOUT`, ...: `CycleReport.cause`). */
  lastCause?: string;
  /** The heartbeat, when it was last ignored for lying ahead of Redis's clock. */
  futureHeartbeat?: FutureHeartbeat;
  /** Keys the last cycle skipped (wrong type, from the future): they cost only their own symbol or feature. */
  invalidKeys?: readonly KeyProblemNote[];
  /** Positions the last leader cycle could not vouch for (undefined on a stand-by or before the first). */
  positions?: { stale: number; unknown: number; invalid: number; feedProblem?: string } | undefined;
}

/** What /health says of the positions: unknown ones are judged by each plan's own notional, never taken for flat. */
export interface PositionsHealth {
  stale: number;
  unknown: number;
  invalid: number;
  feed: 'complete' | 'incomplete';
  /** Why the positions feed was judged incomplete. */
  feed_problem?: string;
}

/** What the HTTP API reads from the worker; `BudgetWorker` provides it. */
export interface HealthSource {
  /** The effective mode of the latest cycle. */
  readonly mode: Mode;
  readonly healthFacts: WorkerHealthFacts;
}

/** The body of GET /health. */
export interface HealthBody {
  status: 'healthy' | 'degraded' | 'unhealthy';
  service: typeof SERVICE_NAME;
  /** The effective mode of this replica's latest cycle. */
  mode: Mode;
  mode_source: ModeSource;
  redis: 'connected' | 'disconnected';
  role: WorkerRole;
  /** Seconds since any replica last wrote budgets; null when none is known. */
  budgets_age_sec: number | null;
  /** Why the status is not healthy. */
  reason?: string;
  /** Seconds since this replica's last cycle that ended ok or standby; null before the first. */
  last_success_age_sec: number | null;
  last_cycle_result: CycleResult | null;
  instance: string;
  /** Keys the last cycle skipped, named with their problem; absent when there are none. Not a reason to degrade by itself. */
  invalid_keys?: string[];
  /** Unknown positions of this replica's last leader cycle; null on a stand-by. */
  positions: PositionsHealth | null;
}

/** The verdict of a health check: the HTTP status and the body. */
export interface HealthReport {
  code: 200 | 503;
  body: HealthBody;
}

/** What `judgeHealth` decides from: the worker's facts and the moment's observations. */
export interface HealthInput {
  worker: WorkerHealthFacts;
  /** Whether Redis answered PING just now. */
  redisConnected: boolean;
  /** Why the client is not connected, when its latest connection error said (`WRONGPASS`, `NOAUTH`, ...). */
  redisProblem?: ConnectionProblem;
  /** HEALTH_MAX_BUDGET_AGE_SEC. */
  maxBudgetAgeSec: number;
  nowMs: number;
  instanceId: string;
}

/** What `evaluateHealth` needs besides the worker. */
export interface HealthContext {
  redis: RedisClient;
  worker: HealthSource;
  instanceId: string;
  /** HEALTH_MAX_BUDGET_AGE_SEC. */
  maxBudgetAgeSec: number;
  /** Wall clock in epoch ms, the same as the worker's. */
  now: () => number;
  /** How long to wait for Redis to answer PING before reporting it disconnected. */
  redisPingTimeoutMs: number;
}

const ageSec = (nowMs: number, atMs: number | undefined): number | null =>
  atMs === undefined ? null : Math.max(0, Math.round((nowMs - atMs) / 100) / 10);

/**
 * The answer of GET /health from what the worker knows, a pure function: 503 `unhealthy` while
 * Redis does not answer; 503 `degraded`, with a `reason`, when no replica has written budgets for
 * `maxBudgetAgeSec` (a stalled or failing leader is seen by every replica, as budgets age on all of
 * them alike) or this replica's last three cycles failed; else 200 `healthy`.
 */
export function judgeHealth(input: HealthInput): HealthReport {
  const { worker, nowMs } = input;
  const budgetsAge = ageSec(nowMs, worker.budgetsWrittenAtMs);
  const body: HealthBody = {
    status: 'healthy',
    service: SERVICE_NAME,
    mode: worker.mode,
    mode_source: worker.modeSource,
    redis: input.redisConnected ? 'connected' : 'disconnected',
    role: worker.role,
    budgets_age_sec: budgetsAge,
    last_success_age_sec: ageSec(nowMs, worker.lastSuccessAtMs),
    last_cycle_result: worker.lastCycleResult ?? null,
    instance: input.instanceId,
    positions: positionsHealth(worker.positions),
  };
  const invalid = worker.invalidKeys ?? [];
  if (invalid.length > 0) body.invalid_keys = invalid.map((k) => `${k.key} (${k.problem}${k.detail ? `: ${k.detail}` : ''})`);
  const reason = unhealthyReason(input, budgetsAge);
  if (reason === undefined) return { code: 200, body };
  body.status = input.redisConnected ? 'degraded' : 'unhealthy';
  body.reason = reason;
  return { code: 503, body };
}

function positionsHealth(p: WorkerHealthFacts['positions']): PositionsHealth | null {
  if (p === undefined) return null;
  const out: PositionsHealth = { stale: p.stale, unknown: p.unknown, invalid: p.invalid, feed: p.feedProblem === undefined ? 'complete' : 'incomplete' };
  if (p.feedProblem !== undefined) out.feed_problem = p.feedProblem;
  return out;
}

function unhealthyReason(input: HealthInput, budgetsAge: number | null): string | undefined {
  const { worker, maxBudgetAgeSec, nowMs } = input;
  if (!input.redisConnected) {
    const cause = input.redisProblem?.cause;
    // Credentials are the one cause no retry fixes: name it, and the variable that holds them.
    if (cause !== undefined && AUTH_CAUSES.has(cause)) return `redis refuses the credentials (${cause}): check the user and password in REDIS_URL`;
    return cause === undefined ? 'redis does not answer PING' : `redis does not answer PING (${cause})`;
  }
  if (worker.failedInARow >= FAILED_CYCLES_DEGRADED) {
    const error = worker.lastError ?? 'unknown error';
    const cause = worker.lastCause ?? redisErrorCodeIn(error);
    return `last ${worker.failedInARow} cycles failed${cause ? ` (${cause})` : ''}: ${error.slice(0, 300)}`;
  }
  // A heartbeat from the future says nothing about when budgets were written: it is ignored, and named.
  const future = worker.futureHeartbeat ? `; the heartbeat is ${worker.futureHeartbeat.aheadSec} s ahead of Redis's clock (written by ${worker.futureHeartbeat.leader}) and is ignored` : '';
  if (budgetsAge !== null && budgetsAge > maxBudgetAgeSec) {
    return `no replica has written budgets for ${budgetsAge} s (HEALTH_MAX_BUDGET_AGE_SEC=${maxBudgetAgeSec})${future}`;
  }
  const upSec = (nowMs - worker.startedAtMs) / 1000;
  if (budgetsAge === null && upSec > maxBudgetAgeSec) {
    return `no budgets written by any replica since this one started ${Math.round(upSec)} s ago (HEALTH_MAX_BUDGET_AGE_SEC=${maxBudgetAgeSec})${future}`;
  }
  return undefined;
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

/** The worker's health now: PING Redis within the time limit, then `judgeHealth`. */
export async function evaluateHealth(ctx: HealthContext): Promise<HealthReport> {
  const redisConnected = await redisAnswers(ctx.redis, ctx.redisPingTimeoutMs);
  return judgeHealth({
    worker: ctx.worker.healthFacts,
    redisConnected,
    redisProblem: redisConnected ? undefined : connectionProblem(ctx.redis),
    maxBudgetAgeSec: ctx.maxBudgetAgeSec,
    nowMs: ctx.now(),
    instanceId: ctx.instanceId,
  });
}
