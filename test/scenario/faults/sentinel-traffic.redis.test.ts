import { expect } from 'chai';
import sinon from 'sinon';
import { Registry } from 'prom-client';
import { createRedisClient, redisOptionsFromConfig, waitForReady, type RedisClient } from '../../../lib/redis/client';
import { loadConfig } from '../../../lib/config';
import { BudgetGate } from '../../../plugin/budget-gate';
import type { GateDecision } from '../../../types/permit';
import { eventually } from '../../support/redis';
import { LocalSentinelSet, SENTINEL_MASTER_NAME } from '../../support/redis-sentinel';

const BUDGET = 'quantum:portfolio:budget:BTCUSDT';
const DATA_PASSWORD = 'data-pw/9';
/** Decisions per second sent to the gate through the failover. */
const RATE = 10;

describe('Sentinel failover with the gate under traffic', function () {
  this.timeout(90000);
  let set: LocalSentinelSet;
  const closers: (() => unknown)[] = [];

  before(async function () {
    this.timeout(30000);
    // The Sentinels have no password of their own: REDIS_SENTINEL_PASSWORD stays unset.
    set = await LocalSentinelSet.start({ password: DATA_PASSWORD });
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await set?.stop();
  });

  it(`follows the new master within 1 s of +switch-master at ${RATE} decisions/s, and sends no password to Sentinels that have none`, async () => {
    const warnings = sinon.spy(console, 'warn');
    closers.push(() => warnings.restore());
    const config = loadConfig({
      REDIS_URL: `redis://:${encodeURIComponent(DATA_PASSWORD)}@127.0.0.1:6379`,
      REDIS_SENTINELS: set.sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
      LOG_LEVEL: 'silent',
    });
    const master = set.dataClient(set.masterPort);
    closers.push(() => master.disconnect());
    const fields = { symbol: 'BTCUSDT', budget_usd: '1348', stress_factor: '0.326', equity_usd: '100000', portfolio_heat: '0.65', cluster_stress: '0', vol_regime: '0.33', mode: 'enforce', base_risk_pct: '0.02', position_amt: '0', position_notional_usd: '0', over_budget_usd: '0' };
    // Fresh for the whole test: the replica has it too once replicated.
    await master.hset(BUDGET, { ...fields, timestamp: String(Math.floor(Date.now() / 1000) + 30) });
    await master.call('wait', '1', '2000');

    const gateClient: RedisClient = createRedisClient({ ...redisOptionsFromConfig(config, 'p28-budget-gate'), profile: 'gate' });
    gateClient.on('error', () => undefined);
    closers.push(() => gateClient.disconnect());
    await waitForReady(gateClient, 10000);
    const gate = new BudgetGate({ redis: gateClient, registry: new Registry(), staleAfterMs: 120000, maxClockSkewMs: 60000 });
    closers.push(() => gate.close());
    const plan = { planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY' as const, notionalUsd: 100 };
    expect((await gate.evaluate(plan)).reason).to.equal('within_budget');

    const decisions: { at: number; decision: GateDecision }[] = [];
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        const at = Date.now();
        void gate.evaluate(plan).then((decision) => decisions.push({ at, decision }));
        await new Promise((r) => setTimeout(r, 1000 / RATE));
      }
    })();
    closers.push(() => {
      sending = false;
      return traffic;
    });

    const watcher = set.sentinelClient();
    closers.push(() => watcher.disconnect());
    let switchedAt: number | undefined;
    watcher.on('message', (channel: string) => {
      if (channel === '+switch-master') switchedAt ??= Date.now();
    });
    await watcher.subscribe('+switch-master');

    set.freeze(set.masterPort);
    closers.push(() => set.thaw(set.masterPort));
    await eventually(() => switchedAt !== undefined, 30000, 20);
    // The frozen master answers nothing: the first decision read from Redis after the switch was read from the new one.
    await eventually(() => decisions.some((d) => d.at >= switchedAt! && d.decision.reason === 'within_budget'), 10000, 20);
    const followed = decisions.find((d) => d.at >= switchedAt! && d.decision.reason === 'within_budget')!;
    const followedSec = (followed.at - switchedAt!) / 1000;
    const failedOpen = decisions.filter((d) => d.decision.failOpen);
    console.log(`      gate under ${RATE} decisions/s read the new master ${followedSec.toFixed(2)} s after +switch-master; ${failedOpen.length} decisions failed open during the failover (${[...new Set(failedOpen.map((d) => d.decision.reason))].join(', ')})`);
    expect(followedSec, 's from +switch-master to the first decision read from the new master').to.be.below(1);

    const passwordWarnings = warnings.getCalls().filter((c) => String(c.args[0]).includes('password'));
    expect(passwordWarnings.map((c) => String(c.args[0]))).to.deep.equal([]);
  });
});
