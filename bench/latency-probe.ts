import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { pinProcess } from './placement';

/** One HGETALL of the probe: when it started (epoch ms) and how long it took (ms). */
export interface ProbeSample {
  atMs: number;
  latencyMs: number;
}

/**
 * Another Redis client in a process of its own, reading one key with HGETALL back to back, as a
 * gate does: what it measures is how long Redis makes other clients wait, not how busy the
 * benchmark's own event loop is. It runs on the CPUs it is given (those of redis-server in the
 * benchmark), or else on the benchmark's.
 */
export class LatencyProbe {
  private constructor(private readonly child: ChildProcess) {}

  /** Starts the probe on `url`, reading `key`; resolves once it has connected and is reading. */
  static async start(url: string, key: string, cpus?: string): Promise<LatencyProbe> {
    const child = fork(__filename, ['--probe', url, key], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    if (cpus !== undefined) pinProcess(child.pid!, cpus);
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`latency probe exited with ${code}`)));
    });
    return new LatencyProbe(child);
  }

  /** Stops the probe and returns every sample it took. */
  async stop(): Promise<ProbeSample[]> {
    const samples = new Promise<ProbeSample[]>((resolve) => this.child.once('message', (m) => resolve(m as ProbeSample[])));
    this.child.send('stop');
    const result = await samples;
    await new Promise((resolve) => (this.child.exitCode === null ? this.child.once('exit', resolve) : resolve(undefined)));
    return result;
  }
}

async function probe(url: string, key: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  await client.ping();
  const samples: ProbeSample[] = [];
  let running = true;
  process.on('message', () => {
    running = false;
  });
  process.send!('ready');
  while (running) {
    const start = performance.now();
    await client.hgetall(key);
    samples.push({ atMs: performance.timeOrigin + start, latencyMs: performance.now() - start });
  }
  client.disconnect();
  process.send!(samples, () => process.exit(0));
}

if (process.argv[2] === '--probe') void probe(process.argv[3]!, process.argv[4]!);
