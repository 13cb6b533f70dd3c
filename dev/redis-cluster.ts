import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './local-redis-server';
import { createRedisClient, waitForReady, type RedisClient } from '../lib/redis/client';

/**
 * A private Redis Cluster of `masters` redis-server processes on free loopback ports, slots split
 * evenly, no replicas, nothing kept on disk but the cluster config files in a temp directory.
 */
export class LocalRedisCluster {
  private constructor(
    readonly ports: number[],
    private readonly children: ChildProcess[],
    private readonly dir: string,
  ) {}

  static async start(masters = 3): Promise<LocalRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'p28-cluster-'));
    const ports: number[] = [];
    const children: ChildProcess[] = [];
    const cluster = new LocalRedisCluster(ports, children, dir);
    try {
      for (let i = 0; i < masters; i++) {
        const port = await freePort();
        ports.push(port);
        children.push(spawnNode(port, dir));
      }
      const admins = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 }));
      for (const a of admins) a.on('error', () => undefined);
      try {
        await Promise.all(admins.map((a) => waitFor(async () => (await a.ping().catch(() => '')) === 'PONG')));
        const perNode = Math.ceil(16384 / masters);
        await Promise.all(admins.map((a, i) => a.call('cluster', 'addslotsrange', i * perNode, Math.min(16383, (i + 1) * perNode - 1))));
        for (const port of ports.slice(1)) await admins[0]!.call('cluster', 'meet', '127.0.0.1', port);
        await Promise.all(admins.map((a) => waitFor(async () => String(await a.call('cluster', 'info')).includes('cluster_state:ok'))));
      } finally {
        for (const a of admins) a.disconnect();
      }
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /**
   * Starts one more node on a free port, joins it to the cluster as a replica of the master on
   * `masterPort`, waits until it has synced, and resolves to its port.
   */
  async addReplica(masterPort: number): Promise<number> {
    const port = await freePort();
    this.children.push(spawnNode(port, this.dir));
    this.ports.push(port);
    const [replica, master] = [port, masterPort].map((p) => new Redis({ port: p, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 }));
    for (const c of [replica!, master!]) c.on('error', () => undefined);
    try {
      await waitFor(async () => (await replica!.ping().catch(() => '')) === 'PONG');
      const masterId = String(await master!.call('cluster', 'myid'));
      await replica!.call('cluster', 'meet', '127.0.0.1', masterPort);
      await waitFor(async () => String(await replica!.call('cluster', 'nodes')).includes(masterId));
      await replica!.call('cluster', 'replicate', masterId);
      await waitFor(async () => /master_link_status:up/.test(String(await replica!.info('replication'))));
      await waitFor(async () => String(await replica!.call('cluster', 'info')).includes('cluster_state:ok'));
    } finally {
      replica!.disconnect();
      master!.disconnect();
    }
    return port;
  }

  /** Promotes the replica on `replicaPort` (CLUSTER FAILOVER TAKEOVER) and waits until its old master follows it. */
  async failover(replicaPort: number, oldMasterPort: number): Promise<void> {
    const [replica, oldMaster] = [replicaPort, oldMasterPort].map((p) => new Redis({ port: p, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 }));
    for (const c of [replica!, oldMaster!]) c.on('error', () => undefined);
    try {
      await replica!.call('cluster', 'failover', 'takeover');
      await waitFor(async () => /role:slave/.test(String(await oldMaster!.info('replication'))));
      await waitFor(async () => /role:master/.test(String(await replica!.info('replication'))));
    } finally {
      replica!.disconnect();
      oldMaster!.disconnect();
    }
  }

  get nodes(): { host: string; port: number }[] {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function spawnNode(port: number, dir: string): ChildProcess {
  const child = spawn(
    process.env.REDIS_SERVER_BIN ?? 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { stdio: 'ignore', cwd: dir },
  );
  process.once('exit', () => child.kill('SIGKILL'));
  return child;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`cluster not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a private 3-master cluster and a connected `worker`-profile client for the calling
 * `describe` block, and stops both afterwards.
 */
export function useRedisCluster(): { readonly cluster: LocalRedisCluster; readonly client: RedisClient } {
  const holder: { cluster?: LocalRedisCluster; client?: RedisClient } = {};
  before(async function () {
    this.timeout(20000);
    holder.cluster = await LocalRedisCluster.start(3);
    holder.client = createRedisClient({ url: 'redis://127.0.0.1', clusterNodes: holder.cluster.nodes, profile: 'worker' });
    holder.client.on('error', () => undefined);
    await waitForReady(holder.client, 10000);
  });
  after(async () => {
    holder.client?.disconnect();
    await holder.cluster?.stop();
  });
  return {
    get cluster(): LocalRedisCluster {
      if (!holder.cluster) throw new Error('cluster not started yet');
      return holder.cluster;
    },
    get client(): RedisClient {
      if (!holder.client) throw new Error('cluster not started yet');
      return holder.client;
    },
  };
}
