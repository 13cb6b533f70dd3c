import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './local-redis-server';

export interface SentinelSetOptions {
  /** requirepass and masterauth of the master and the replica. */
  password?: string;
  /** requirepass of the Sentinels themselves, distinct from the data password. */
  sentinelPassword?: string;
  /** Sentinel down-after-milliseconds (default 1000, to keep tests short). */
  downAfterMs?: number;
  /** Sentinel failover-timeout (default 3000). */
  failoverTimeoutMs?: number;
}

export const SENTINEL_MASTER_NAME = 'mymaster';

/**
 * A private Sentinel deployment on free loopback ports: a master, one replica and three
 * `redis-server --sentinel` processes (quorum 2), with short failure-detection times. The master
 * can be frozen (SIGSTOP) to play a hung host, and thawed again.
 */
export class LocalSentinelSet {
  private constructor(
    readonly masterPort: number,
    readonly replicaPort: number,
    readonly sentinelPorts: number[],
    private readonly processes: Map<number, ChildProcess>,
    private readonly dir: string,
    private readonly options: SentinelSetOptions,
  ) {}

  static async start(options: SentinelSetOptions = {}): Promise<LocalSentinelSet> {
    const dir = mkdtempSync(join(tmpdir(), 'p28-sentinel-'));
    const [masterPort, replicaPort, ...sentinelPorts] = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
    const set = new LocalSentinelSet(masterPort!, replicaPort!, sentinelPorts, new Map(), dir, options);
    try {
      const auth = options.password ? ['--requirepass', options.password, '--masterauth', options.password] : [];
      set.spawn(masterPort!, ['--port', String(masterPort), ...auth]);
      set.spawn(replicaPort!, ['--port', String(replicaPort), '--replicaof', '127.0.0.1', String(masterPort), ...auth]);
      const replica = set.dataClient(replicaPort!);
      try {
        await waitFor(async () => /master_link_status:up/.test(String(await replica.info('replication').catch(() => ''))));
      } finally {
        replica.disconnect();
      }
      for (const port of sentinelPorts) {
        const conf = join(dir, `sentinel-${port}.conf`);
        const lines = [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} ${options.failoverTimeoutMs ?? 3000}`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          ...(options.password ? [`sentinel auth-pass ${SENTINEL_MASTER_NAME} ${options.password}`] : []),
          ...(options.sentinelPassword ? [`requirepass ${options.sentinelPassword}`, `sentinel sentinel-pass ${options.sentinelPassword}`] : []),
        ];
        writeFileSync(conf, `${lines.join('\n')}\n`);
        set.spawn(port, [conf, '--sentinel']);
      }
      await Promise.all(
        sentinelPorts.map(async (port) => {
          const sentinel = set.sentinelClient(port);
          try {
            await waitFor(async () => {
              const info = (await sentinel.call('sentinel', 'master', SENTINEL_MASTER_NAME).catch(() => [])) as string[];
              const field = (name: string) => Number(info[info.indexOf(name) + 1]);
              return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
            }, 20000);
          } finally {
            sentinel.disconnect();
          }
        }),
      );
      return set;
    } catch (error) {
      await set.stop();
      throw error;
    }
  }

  get sentinels(): { host: string; port: number }[] {
    return this.sentinelPorts.map((port) => ({ host: '127.0.0.1', port }));
  }

  /** A plain client of one data node (the master or the replica, by port). */
  dataClient(port: number): Redis {
    const client = new Redis({ port, host: '127.0.0.1', password: this.options.password, maxRetriesPerRequest: 0, retryStrategy: () => 100, commandTimeout: 2000 });
    client.on('error', () => undefined);
    return client;
  }

  /** A plain client of one Sentinel. */
  sentinelClient(port = this.sentinelPorts[0]!): Redis {
    const client = new Redis({ port, host: '127.0.0.1', password: this.options.sentinelPassword, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    return client;
  }

  /** Freezes the process on `port` (SIGSTOP): its connections stay open, nothing answers. */
  freeze(port: number): void {
    this.processes.get(port)?.kill('SIGSTOP');
  }

  thaw(port: number): void {
    this.processes.get(port)?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.processes.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGCONT');
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private spawn(port: number, args: string[]): void {
    const dataNode = !args.includes('--sentinel');
    const extra = dataNode ? ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] : [];
    const child = spawn(process.env.REDIS_SERVER_BIN ?? 'redis-server', [...args, ...extra, '--loglevel', 'warning'], { stdio: 'ignore', cwd: this.dir });
    this.processes.set(port, child);
    process.once('exit', () => child.kill('SIGKILL'));
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`sentinel set not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
