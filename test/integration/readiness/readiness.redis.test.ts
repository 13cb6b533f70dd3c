import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { readinessCommand, READINESS_EXIT } from '../../../lib/commands/readiness-command';
import { forEachDecision } from '../../../lib/readiness/read-history';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { encodeBudgetHash } from '../../../types/budget-hash';
import { CycleHistoryEntry, readRecordedCycle } from '../../../types/cycle-history-entry';
import { DECISION_LOG_FIELDS, packDecisionLogValues } from '../../../types/decision-log-entry';
import type { ReadinessReport } from '../../../lib/readiness/readiness';
import { budgetFixture } from '../../support/budget-fixture';
import { connectedClient, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';

const ROOT = join(__dirname, '..', '..', '..');
const keys = new RedisKeys();
const HOUR = 3_600_000;
const fixedHeat = (value: number, source: 'live' | 'default' = 'live'): HeatReader => ({ read: async () => ({ value, source, ageSec: 0 }) });
type Entry = [string, string[]];
const asObject = (flat: readonly string[]): Record<string, string> => Object.fromEntries(flat.flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1]!]] : [])));

/** The decision log entry of a within-budget plan judged on the guide's hash of the cycle at `cycleMs`. */
function decisionEntry(cycleMs: number, planId: string): string[] {
  const hash = encodeBudgetHash(budgetFixture({ symbol: 'ETHUSDT', timestamp: Math.floor(cycleMs / 1000), position_amt: 1, position_notional_usd: 1000, over_budget_usd: 0, position_price: 1000 }));
  const values: Record<string, string> = {
    v: '1', ts: String(cycleMs + 1000), plan_id: planId, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: '0.1', notional_usd: '', reduce_only: '',
    reason: 'within_budget', detail: '', allow: '1', would_block: '0', fail_open: '0', enforced: '0', mode: 'shadow', source: 'redis', gate: 'gov-1', via: 'node',
    budget_usd: '1348', position_notional_usd: '1000', projected_notional_usd: '1100', reserved_usd: '',
    equity_usd: hash.equity_usd!, portfolio_heat: hash.portfolio_heat!, cluster_stress: hash.cluster_stress!, vol_regime: hash.vol_regime!, base_risk_pct: hash.base_risk_pct!, stress_factor: hash.stress_factor!,
    hash_mode: 'shadow', hash_ts: hash.timestamp!, position_amt: '1', position_price: '1000', position_status: '', last_violation_ts: '',
    stale_after_ms: '60000', violation_window_ms: '30000', max_clock_skew_ms: '5000', force_shadow: '0',
  };
  return ['d', packDecisionLogValues(DECISION_LOG_FIELDS.map((name) => values[name]!))];
}

describe('readiness over Redis', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());
  beforeEach(() => client.flushall());

  /** A steady shadow hour up to `nowMs`: a cycle every 5 s (ids at their time), a decision every minute, one current hash. */
  async function steadyHour(nowMs: number): Promise<void> {
    const pipeline = client.pipeline();
    for (let t = nowMs - HOUR - 4000; t <= nowMs; t += 5000) {
      pipeline.xadd(keys.cycleHistoryStream, `${t}-0`, 'v', '1', 'ts', String(t), 'result', 'ok', 'duration_ms', '12', 'symbols', '2', 'written', '2', 'leader', 'w1', 'role', 'leader', 'mode', 'shadow', 'mode_source', 'env', 'portfolio', 'fresh', 'stale', '{}', 'cause', '');
      if ((t - (nowMs - HOUR - 4000)) % 60000 === 0) pipeline.xadd(keys.decisionLogStream, `${t + 1000}-0`, ...decisionEntry(t, `p-${t}`));
    }
    pipeline.hset(keys.budget('ETHUSDT'), encodeBudgetHash(budgetFixture({ symbol: 'ETHUSDT', timestamp: Math.floor(nowMs / 1000), position_amt: 1, position_notional_usd: 1000, over_budget_usd: 0, position_price: 1000 })));
    await pipeline.exec();
  }

  it('reads the window from the streams and exits 0 only when every item passes (3 otherwise)', async () => {
    const nowMs = Date.now();
    await steadyHour(nowMs);
    const config = workerConfig(redis.server);
    let out = '';
    const code = await readinessCommand(client, config, { window: '1h' }, (t) => (out += t), nowMs);
    expect(out.split('\n')[0], out).to.include('READY to enforce');
    expect(code).to.equal(READINESS_EXIT.ready);

    await client.set(keys.modeOverride, 'enforce');
    let json = '';
    expect(await readinessCommand(client, config, { window: '1h', json: true }, (t) => (json += t), nowMs)).to.equal(READINESS_EXIT.notReady);
    const report = JSON.parse(json) as ReadinessReport;
    expect(report.ready).to.equal(false);
    expect(report.items.filter((i) => !i.pass).map((i) => i.id)).to.deep.equal(['rollback_ready']);
    expect(report.items.find((i) => i.id === 'governor_integration')!.figures).to.include({ decisions: 60, gates: 1, failOpen: 0 });

    let ledger = '';
    await readinessCommand(client, config, { window: '1h', ledger: true }, (t) => (ledger += t), nowMs);
    expect(ledger).to.match(/^## P2\.8 Portfolio Risk Governor: pre-activation check/);
    expect(ledger).to.include('- [ ] **Rollback plan ready**');
  });

  it('reads a window longer than one page of XRANGE entry by entry, in order, and nothing outside it', async () => {
    const nowMs = Date.now();
    const pipeline = client.pipeline();
    // Entries in one millisecond share it and differ by sequence: the paging must not skip or repeat any.
    for (let i = 0; i < 12000; i++) pipeline.xadd(keys.decisionLogStream, `${nowMs - 1000 + Math.floor(i / 7)}-${i % 7}`, ...decisionEntry(nowMs - 5000, `p-${i}`));
    pipeline.xadd(keys.decisionLogStream, `${nowMs + 5000}-0`, ...decisionEntry(nowMs, 'later'));
    await pipeline.exec();
    const seen: string[] = [];
    const counts = await forEachDecision(client, keys, nowMs - 60000, nowMs + 1000, (d) => seen.push(d.planId));
    expect(counts).to.deep.equal({ read: 12000, unreadable: 0 });
    expect(seen).to.deep.equal(Array.from({ length: 12000 }, (_, i) => `p-${i}`));
  });

  it('records each leader cycle in quantum:stream:p28.cycles, stale inputs by type, and nothing for a stand-by', async () => {
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const leader = new BudgetWorker({ config: workerConfig(redis.server, { P28_INSTANCE_ID: 'w-lead' }), redis: client, heatSource: fixedHeat(0, 'default') });
    const standby = new BudgetWorker({ config: workerConfig(redis.server, { P28_INSTANCE_ID: 'w-standby' }), redis: client, heatSource: fixedHeat(0.65) });
    expect((await leader.runOnce()).result).to.equal('ok');
    expect((await standby.runOnce()).result).to.equal('standby');
    const entries = (await client.xrange(keys.cycleHistoryStream, '-', '+')) as Entry[];
    expect(entries).to.have.length(1);
    const fields = asObject(entries[0]![1]);
    expect(CycleHistoryEntry.safeParse(fields).success).to.equal(true);
    expect(fields).to.include({ result: 'ok', leader: 'w-lead', role: 'leader', mode: 'shadow', mode_source: 'env', portfolio: 'fresh', symbols: '1', written: '1' });
    expect(readRecordedCycle(entries[0]![0], entries[0]![1])?.stale).to.deep.equal({ heat: 1 });

    await client.del(keys.cycleHistoryStream, keys.workerLease);
    const off = new BudgetWorker({ config: workerConfig(redis.server, { P28_INSTANCE_ID: 'w-lead', CYCLE_HISTORY_MAXLEN: '0' }), redis: client, heatSource: fixedHeat(0.65) });
    expect((await off.runOnce()).result).to.equal('ok');
    expect(await client.exists(keys.cycleHistoryStream)).to.equal(0);
  });

  it('serves GET /v1/readiness behind the API token, and answers 400 for a bad window', async () => {
    let service: WorkerServiceHandle | undefined;
    const token = 'readiness-token-0123456789';
    try {
      service = await startWorkerService(workerConfig(redis.server, { PORT: '0', P28_API_TOKEN: token }), { heatSource: fixedHeat(0.65), processMetrics: false });
      const url = `http://127.0.0.1:${service.port}/v1/readiness`;
      expect((await fetch(url)).status).to.equal(401);
      const bad = await fetch(`${url}?window=forever`, { headers: { authorization: `Bearer ${token}` } });
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as { message: string }).message).to.include('window: expected a duration');
      const res = await fetch(`${url}?window=30m`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).to.equal(200);
      const report = (await res.json()) as ReadinessReport;
      expect(report.window.seconds).to.equal(1800);
      expect(report.items.map((i) => i.id)).to.deep.equal(['shadow_stable', 'budgets_accurate', 'no_false_positives', 'governor_integration', 'stale_inputs', 'rollback_ready']);
      // A worker that just started has half a minute of history, not the window's 30 minutes.
      expect(report.ready).to.equal(false);
    } finally {
      await service?.stop();
    }
  });

  it('exits 2 with a message naming the option for a bad --window or --set, before asking Redis', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli.ts'), ...args], {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '', REDIS_URL: 'redis://127.0.0.1:1' },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.once('exit', (code) => resolve({ code, err }));
      });
    const window = await run(['readiness', '--window', '5x']);
    expect(window.code).to.equal(2);
    expect(window.err).to.include('window: expected a duration such as 30m, 24h or 7d');
    const set = await run(['replay', '--set', 'GAMMA_VOL=1.5']);
    expect(set.code).to.equal(2);
    expect(set.err).to.include('--set GAMMA_VOL: expected a number in [0,1], got "1.5"');
  });
});
