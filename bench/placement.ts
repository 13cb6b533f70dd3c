import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/**
 * Where the benchmark process and redis-server run. On a small machine the figures depend on it:
 * sharing one core, the client and Redis take turns; on separate cores they overlap.
 */
export interface Placement {
  /** Added to scenario names: `same core` or `separate cores`. */
  name: string;
  /** CPU list (taskset syntax) for the benchmark process and its children. */
  benchCpus: string;
  /** CPU list for redis-server. */
  redisCpus: string;
}

/** Whether placements can be applied: taskset is installed and the machine has two cores or more. */
export function canPin(): boolean {
  return cpus().length >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Both placements on CPUs 0 and 1, or none when they cannot be applied. */
export function placements(): Placement[] {
  if (!canPin()) return [];
  return [
    { name: 'same core', benchCpus: '0', redisCpus: '0' },
    { name: 'separate cores', benchCpus: '0', redisCpus: '1' },
  ];
}

/** The CPU list a process may run on (`taskset -c -p`), e.g. `0,1` or `0-3`. */
export function affinityOf(pid: number): string {
  const out = spawnSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  const match = /: (\S+)\s*$/.exec(out.stdout ?? '');
  if (out.status !== 0 || !match) throw new Error(`taskset -c -p ${pid} failed: ${out.stderr}`);
  return match[1]!;
}

/** Pins every thread of process `pid` to `cpuList`. */
export function pin(pid: number, cpuList: string): void {
  const out = spawnSync('taskset', ['-a', '-c', '-p', cpuList, String(pid)], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`taskset -a -c -p ${cpuList} ${pid} failed: ${out.stderr}`);
}

/**
 * Runs `run` with this process and the redis-server `redisPid` pinned as `placement` says, and puts
 * both back where they were afterwards. Child processes started meanwhile inherit the bench's CPUs.
 */
export async function underPlacement<T>(placement: Placement, redisPid: number, run: () => Promise<T>): Promise<T> {
  const before = { bench: affinityOf(process.pid), redis: affinityOf(redisPid) };
  pin(process.pid, placement.benchCpus);
  pin(redisPid, placement.redisCpus);
  try {
    return await run();
  } finally {
    pin(process.pid, before.bench);
    pin(redisPid, before.redis);
  }
}
