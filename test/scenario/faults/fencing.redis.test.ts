import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { connect } from 'node:net';
import type { RedisClient } from '../../../lib/redis/client';
import { HeatGateStub } from '../../support/heat-gate-stub';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { seedSymbols } from '../../support/seed';
import { runWorkerProcess, type WorkerProcess } from '../../support/worker-process';

const LEASE = 'quantum:p28:worker:lease';
const HEARTBEAT = 'quantum:p28:worker:heartbeat';
// Longer than a cycle of the book on a loaded machine, so the new leader keeps its lease.
const LEASE_TTL_MS = 5000;
const SYMBOLS = 8000;

describe('fencing: a leader frozen at its first write while the operator rolls back (real processes)', function () {
  this.timeout(180000);
  const redis = useRedisServer();
  let client: RedisClient;
  let stub: HeatGateStub;
  const running: WorkerProcess[] = [];

  before(async () => {
    client = await connectedClient(redis.server, 'worker', 20000);
    stub = await HeatGateStub.start();
    stub.serveHeat(0.3);
  });
  after(async () => {
    for (const w of running.splice(0)) await w.kill();
    client.disconnect();
    await stub.close();
  });

  const start = (instance: string) => {
    const w = runWorkerProcess([], {
      REDIS_URL: redis.server.url,
      HEAT_GATE_METRICS_URL: stub.url,
      PORT: '0',
      LOG_LEVEL: 'info',
      P28_INSTANCE_ID: instance,
      P28_MODE: 'enforce',
      BUDGET_COMPUTE_INTERVAL_SEC: '1',
      LEASE_TTL_MS: String(LEASE_TTL_MS),
      STALE_SEC: '600',
    });
    running.push(w);
    return w;
  };
  const holder = async () => (await client.get(LEASE))?.split('/')[0] ?? null;
  const heartbeatLeader = async () => client.hget(HEARTBEAT, 'leader');

  /** Resolves at the first budget write of the client named `name`, seen with MONITOR on a raw socket. */
  async function firstWriteOf(name: string): Promise<void> {
    let source: string | undefined;
    for (const line of String(await client.client('LIST')).split('\n')) {
      const m = /addr=(\S+) .*name=(\S+)/.exec(line);
      if (m && m[2] === name) source = m[1];
    }
    if (!source) throw new Error(`no client named ${name}`);
    const socket = connect(redis.server.port, '127.0.0.1');
    socket.write('MONITOR\r\n');
    let buffered = '';
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\r\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes(`[0 ${source}]`) && /"(evalsha|hset|hdel)" "quantum:portfolio:budget:|"evalsha" "\w+" "\d" "quantum:portfolio:budget:/i.test(line)) resolve();
        }
      });
    });
    socket.destroy();
  }

  it('no hash goes back to mode=enforce after SIGCONT, and the late writes are refused in Redis, not logged as failed', async () => {
    await client.hset('quantum:state:portfolio', { equity_usd: '100000', drawdown: '0', timestamp: String(Math.floor(Date.now() / 1000)) });
    const symbols = await seedSymbols(client, SYMBOLS);
    const a = start('proc-a');
    await eventually(async () => (await heartbeatLeader()) === 'proc-a', 60000, 100).catch((error: Error) => {
      throw new Error(`${error.message}: ${a.stdout().slice(-2000)}`);
    });
    const b = start('proc-b');
    await eventually(() => b.stdout().includes('"msg":"cycle"'), 30000, 50);
    expect(await holder()).to.equal('proc-a');

    // Freeze the leader at the first budget write of its next cycle (computed in enforce).
    await firstWriteOf('p28-worker:proc-a');
    a.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    // The operator rolls back to shadow; the stand-by takes the lease and writes a shadow cycle.
    await client.set('quantum:p28:mode', 'shadow');
    await eventually(async () => (await heartbeatLeader()) === 'proc-b', 60000, 100);
    const rolledBackAtMs = Number(await client.hget(HEARTBEAT, 'last_success_ts'));
    while (Date.now() - frozenAt < 2 * LEASE_TTL_MS) await new Promise((r) => setTimeout(r, 50));
    const sample = symbols.filter((_, i) => i % 40 === 0).map((s) => `quantum:portfolio:budget:${s}`);
    const enforceNow = async () => {
      const pipeline = (client as Redis).pipeline();
      for (const key of sample) pipeline.hmget(key, 'mode', 'timestamp');
      const replies = (await pipeline.exec()) ?? [];
      return replies.filter(([, v]) => (v as (string | null)[])[0] === 'enforce').length;
    };
    expect(await enforceNow(), 'every sampled hash says shadow after the rollback').to.equal(0);

    a.child.kill('SIGCONT');
    const until = Date.now() + 4000;
    let worst = 0;
    while (Date.now() < until) {
      worst = Math.max(worst, await enforceNow());
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(worst, 'sampled hashes saying enforce after SIGCONT').to.equal(0);
    // Every timestamp is at or after the rollback (none went back in time).
    const stamps = await Promise.all(sample.map((k) => client.hget(k, 'timestamp')));
    for (const t of stamps) expect(Number(t) * 1000).to.be.at.least(Math.floor(rolledBackAtMs / 1000) * 1000 - 1000);

    await eventually(() => a.stdout().includes('refused by fencing') || a.stdout().includes('"msg":"stand-by: '), 10000, 50);
    const failedLines = a.logLines().filter((l) => l.msg && String(l.msg).startsWith('cycle failed'));
    expect(failedLines, JSON.stringify(failedLines.slice(0, 2))).to.deep.equal([]);
  });
});
