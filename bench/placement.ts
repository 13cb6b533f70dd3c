import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/**
 * Where the benchmark process and its redis-server run. On a small machine a loopback round trip
 * costs about twice as much when the two processes sit on different cores (the wake-up crosses
 * cores) as when they share one, so a ratio against a raw client means little unless both
 * placements are measured: every scenario that compares against raw Redis runs under each.
 */
export interface Placement {
  /** Short label for tables: `same core (0/0)`, `cross core (0/1)`, or `unpinned`. */
  name: string;
  benchCore?: number;
  redisCore?: number;
}

export const SAME_CORE: Placement = Object.freeze({ name: 'same core (0/0)', benchCore: 0, redisCore: 0 });
export const CROSS_CORE: Placement = Object.freeze({ name: 'cross core (0/1)', benchCore: 0, redisCore: 1 });
export const UNPINNED: Placement = Object.freeze({ name: 'unpinned' });

/** Whether `taskset` can pin processes here (Linux with util-linux installed). */
export function canPin(): boolean {
  const probe = spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/**
 * The placements this machine can run: same core and cross core with `taskset` and two or more
 * cores, else only `unpinned` (the table says so).
 */
export function availablePlacements(): Placement[] {
  return canPin() && cpus().length >= 2 ? [SAME_CORE, CROSS_CORE] : [UNPINNED];
}

/** Pins every thread of process `pid` to `cores` (a taskset CPU list such as `0` or `0-3`). */
export function pinProcess(pid: number, cores: string): void {
  const run = spawnSync('taskset', ['-a', '-pc', cores, String(pid)], { stdio: 'ignore' });
  if (run.error !== undefined || run.status !== 0) throw new Error(`taskset could not pin pid ${pid} to cores ${cores}`);
}

/** Every core of the machine as a taskset CPU list. */
export function allCores(): string {
  return `0-${cpus().length - 1}`;
}

/**
 * Runs `fn` with this process and the redis-server `redisPid` placed as `placement` says, then
 * lets both run on every core again.
 */
export async function withPlacement<T>(placement: Placement, redisPid: number | undefined, fn: () => Promise<T>): Promise<T> {
  if (placement.benchCore === undefined || placement.redisCore === undefined || redisPid === undefined) return fn();
  pinProcess(process.pid, String(placement.benchCore));
  pinProcess(redisPid, String(placement.redisCore));
  try {
    return await fn();
  } finally {
    pinProcess(process.pid, allCores());
    pinProcess(redisPid, allCores());
  }
}
