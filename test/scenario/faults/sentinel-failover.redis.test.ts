import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createRedisClient, redisOptionsFromConfig, waitForReady, type RedisClient } from '../../../lib/redis/client';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { loadConfig } from '../../../lib/config';
import { BudgetGate } from '../../../plugin/budget-gate';
import { eventually } from '../../support/redis';
import { LocalSentinelSet, SENTINEL_MASTER_NAME } from '../../support/redis-sentinel';
import { seedGuideScenario } from '../../support/seed';

const BUDGET = 'quantum:portfolio:budget:BTCUSDT';
const DATA_PASSWORD = 'data-pw/9';
const SENTINEL_PASSWORD = 'sentinel-pw@7';

describe('Sentinel: a hung master (SIGSTOP)', function () {
  this.timeout(90000);
  let set: LocalSentinelSet;
  const closers: (() => unknown)[] = [];

  before(async function () {
    this.timeout(30000);
    set = await LocalSentinelSet.start({ password: DATA_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await set?.stop();
  });

  it('is left once Sentinel switches: budgets are written to the new master within 10 s of +switch-master, and the gate never reads the demoted master after SIGCONT', async () => {
    const env = {
      REDIS_URL: `redis://:${encodeURIComponent(DATA_PASSWORD)}@127.0.0.1:6379`,
      REDIS_SENTINELS: set.sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      BUDGET_COMPUTE_INTERVAL_SEC: '0.5',
      STALE_SEC: '3600',
      LOG_LEVEL: 'silent',
      P28_INSTANCE_ID: 'sentinel-worker',
    };
    const config = loadConfig(env);
    const master = set.dataClient(set.masterPort);
    closers.push(() => master.disconnect());
    await seedGuideScenario(master, { timestampSec: Math.floor(Date.now() / 1000) });

    // Heat 0.65 gives 1348; after the switch the worker is fed 0.15, which gives 1748.
    let heatValue = 0.65;
    const heat: HeatReader = { read: async () => ({ value: heatValue, source: 'live' }) };
    // The Sentinels have their own password (REDIS_SENTINEL_PASSWORD), distinct from the data one.
    const workerClient = createRedisClient(redisOptionsFromConfig(config, 'p28-worker'));
    workerClient.on('error', () => undefined);
    closers.push(() => workerClient.disconnect());
    await waitForReady(workerClient, 10000);
    const worker = new BudgetWorker({ config, redis: workerClient, heatSource: heat });
    closers.push(() => worker.stop());
    worker.start();
    await eventually(async () => (await master.hget(BUDGET, 'budget_usd')) === '1348', 10000, 50);

    const gateClient: RedisClient = createRedisClient({ ...redisOptionsFromConfig(config, 'p28-budget-gate'), profile: 'gate' });
    gateClient.on('error', () => undefined);
    closers.push(() => gateClient.disconnect());
    await waitForReady(gateClient, 10000);
    const gate = new BudgetGate({ redis: gateClient, registry: new Registry(), timeoutMs: 250 });
    closers.push(() => gate.close());
    const gateBudget = async () => (await gate.evaluate({ planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.001 })).budgetUsd;
    expect(await gateBudget()).to.equal(1348);

    const watcher = set.sentinelClient();
    closers.push(() => watcher.disconnect());
    let switchedAt: number | undefined;
    watcher.on('message', (channel: string) => {
      if (channel === '+switch-master') switchedAt ??= Date.now();
    });
    await watcher.subscribe('+switch-master');

    set.freeze(set.masterPort);
    closers.push(() => set.thaw(set.masterPort));
    await eventually(() => switchedAt !== undefined, 30000, 50);
    heatValue = 0.15;
    const promoted = set.dataClient(set.replicaPort);
    closers.push(() => promoted.disconnect());
    await eventually(async () => (await promoted.hget(BUDGET, 'budget_usd').catch(() => null)) === '1748', 15000, 50);
    const workerRecoverySec = (Date.now() - switchedAt!) / 1000;
    await eventually(async () => (await gateBudget()) === 1748, 15000, 50);
    const gateRecoverySec = (Date.now() - switchedAt!) / 1000;
    expect(workerRecoverySec, 'budgets written again after +switch-master (s)').to.be.below(10);
    expect(gateRecoverySec, 'gate reads the new master after +switch-master (s)').to.be.below(10);

    // The old master wakes up with the old hash (1348) until Sentinel demotes it: never read.
    set.thaw(set.masterPort);
    const seen = new Set<number | undefined>();
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      seen.add(await gateBudget());
      await new Promise((r) => setTimeout(r, 20));
    }
    expect([...seen]).to.deep.equal([1748]);
  });
});
