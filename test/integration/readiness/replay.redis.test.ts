import { expect } from 'chai';
import { BudgetGate } from '../../../plugin/budget-gate';
import { buildBudgetWrite, type SymbolInputs } from '../../../lib/engine/budget-record';
import type { BudgetParams } from '../../../lib/engine/compute-budget';
import { RedisKeys } from '../../../lib/redis/keys';
import type { RedisClient } from '../../../lib/redis/client';
import { forEachDecision } from '../../../lib/readiness/read-history';
import { loggedPlan, rejudge, ReplayTally } from '../../../lib/readiness/replay';
import { parseReplaySettings, ReplayParamError, type ReplayParams } from '../../../lib/readiness/replay-params';
import { replayCommand } from '../../../lib/commands/replay-command';
import { encodeBudgetHash } from '../../../types/budget-hash';
import type { LoggedDecision } from '../../../types/decision-log-entry';
import type { PermitRequest } from '../../../types/permit';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { workerConfig } from '../../support/seed';

const CONFIGURED: BudgetParams = { baseRiskPct: 0.02, alphaHeat: 0.4, betaCluster: 0.4, gammaVol: 0.2, minBudgetUsd: 500, maxBudgetUsd: 10000 };
const CYCLE_SEC = Math.floor(Date.now() / 1000) - 5;
const DECIDED_MS = CYCLE_SEC * 1000 + 2000;
const EQUITY = 100000;
/** These gates are compared on their decisions, not their speed: a busy host must not turn one into a `timeout` fail-open. */
const LOADED_HOST_TIMEOUT_MS = 2000;
const HEAT = 0.65;

/** The book: one symbol far over budget, two within it (one close to the edge), one flat with a price. */
const BOOK: SymbolInputs[] = [
  { symbol: 'BTCUSDT', positionAmt: 0.5, positionPrice: 100000, notionalUsd: 50000, positionStatus: 'ok', clusterId: 'default', clusterStress: 0, volRegime: 0.33 },
  { symbol: 'ETHUSDT', positionAmt: 1, positionPrice: 1000, notionalUsd: 1000, positionStatus: 'ok', clusterId: 'default', clusterStress: 0, volRegime: 0.33 },
  { symbol: 'XRPUSDT', positionAmt: 1200, positionPrice: 1, notionalUsd: 1200, positionStatus: 'ok', clusterId: 'alts', clusterStress: 0.5, volRegime: 0.67 },
  { symbol: 'SOLUSDT', positionAmt: 0, positionPrice: 100, notionalUsd: 0, positionStatus: 'ok', clusterId: 'alts', clusterStress: 0.5, volRegime: 1 },
];

/** Plans on every symbol: small and large opens, a reduction, a plan sized in USD only. */
function plans(): PermitRequest[] {
  const out: PermitRequest[] = [];
  for (const { symbol, positionPrice } of BOOK) {
    const price = positionPrice ?? 1;
    out.push(
      { planId: `${symbol}-small`, symbol, action: 'OPEN', side: 'BUY', qty: 100 / price },
      { planId: `${symbol}-large`, symbol, action: 'OPEN', side: 'BUY', qty: 600 / price },
      { planId: `${symbol}-sell`, symbol, action: 'ADJUST', side: 'SELL', qty: 50 / price },
      { planId: `${symbol}-usd`, symbol, action: 'OPEN', side: 'BUY', notionalUsd: 250 },
    );
  }
  return out;
}

/** The hashes the worker writes for the book under `params` (its own record builder). */
async function writeBook(client: RedisClient, keys: RedisKeys, params: BudgetParams): Promise<void> {
  for (const input of BOOK) {
    const { record } = buildBudgetWrite(input, { equityUsd: EQUITY, portfolioHeat: HEAT, params, mode: 'shadow', timestamp: CYCLE_SEC });
    await client.del(keys.budget(input.symbol));
    await client.hset(keys.budget(input.symbol), encodeBudgetHash(record));
  }
}

describe('replay (real Redis)', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let client: RedisClient;
  let logged: LoggedDecision[];
  const keys = new RedisKeys();
  const fresh = new RedisKeys('fresh');

  before(async () => {
    client = await connectedClient(redis.server);
    await client.flushall();
    await writeBook(client, keys, CONFIGURED);
    // Replay judges each logged plan on its own hash; these plans hold no reservations for the next.
    const gate = new BudgetGate({ redisUrl: redis.server.url, now: () => DECIDED_MS, instanceId: 'gov-1', reservationTtlMs: 0, timeoutMs: LOADED_HOST_TIMEOUT_MS });
    await gate.ready();
    for (const p of plans()) await gate.evaluate(p);
    await eventually(async () => (await client.xlen(keys.decisionLogStream)) === plans().length);
    await gate.close();
    logged = [];
    await forEachDecision(client, keys, 0, Date.now() + 1000, (d) => logged.push(d));
  });
  after(() => client.disconnect());

  it('judged again under the configured parameters, every logged decision comes out as logged', () => {
    expect(logged).to.have.length(16);
    for (const d of logged) {
      const again = rejudge(d, { budget: CONFIGURED });
      expect(again, d.planId).to.not.equal(undefined);
      expect({ reason: again!.reason, wouldBlock: again!.wouldBlock, allow: again!.allow }, d.planId).to.deep.equal({ reason: d.reason, wouldBlock: d.wouldBlock, allow: d.allow });
    }
    const tally = new ReplayTally({ budget: CONFIGURED }, CONFIGURED);
    for (const d of logged) tally.add(d);
    expect(tally.result()).to.include({ decisions: 16, rejudged: 16, unchanged: 16, baselineDiffers: 0 });
  });

  const candidates: Array<[string, string[]]> = [
    ['a lower BASE_RISK_PCT', ['BASE_RISK_PCT=0.015']],
    ['a higher BASE_RISK_PCT', ['BASE_RISK_PCT=0.05']],
    ['other stress weights', ['ALPHA_HEAT=0.1', 'BETA_CLUSTER=0.9', 'GAMMA_VOL=0.5']],
    ['tighter budget bounds', ['MIN_BUDGET_K=100', 'MAX_BUDGET_K=1000']],
    ['a raised floor', ['MIN_BUDGET_K=5000']],
    ['no violation window', ['BASE_RISK_PCT=0.015', 'VIOLATION_WINDOW_MS=0']],
    ['a stale limit shorter than the hash age', ['STALE_AFTER_MS=1000']],
  ];
  for (const [name, settings] of candidates) {
    it(`gives the decisions of a fresh gate on the hashes the worker writes under ${name} (${settings.join(' ')})`, async () => {
      const candidate: ReplayParams = parseReplaySettings(settings, CONFIGURED);
      await writeBook(client, fresh, candidate.budget);
      const gate = new BudgetGate({
        redisUrl: redis.server.url,
        keyPrefix: 'fresh',
        now: () => DECIDED_MS,
        decisionLogMaxLen: 0,
        reservationTtlMs: 0,
        timeoutMs: LOADED_HOST_TIMEOUT_MS,
        ...(candidate.violationWindowMs !== undefined ? { violationWindowMs: candidate.violationWindowMs } : {}),
        ...(candidate.staleAfterMs !== undefined ? { staleAfterMs: candidate.staleAfterMs } : {}),
      });
      try {
        await gate.ready();
        let changed = 0;
        const tally = new ReplayTally(candidate, CONFIGURED);
        for (const d of logged) {
          const replayed = rejudge(d, candidate)!;
          // Both count the reservations of other plans as logged: none here (reservedUsd 0).
          const { source: _s, ...expected } = await gate.evaluate(loggedPlan(d));
          expect(replayed, d.planId).to.deep.equal(expected);
          if (replayed.wouldBlock !== d.wouldBlock) changed += 1;
          tally.add(d);
        }
        const summary = tally.result();
        expect(summary.newlyBlocked.count + summary.newlyAllowed.count).to.equal(changed);
        expect(summary.unchanged).to.equal(16 - changed);
      } finally {
        await gate.close();
      }
    });
  }

  it('prints decisions re-judged, newly blocked and allowed with their notional, and the symbols most affected', async () => {
    let out = '';
    const summary = await replayCommand(client, workerConfig(redis.server), { window: '1h', set: ['BASE_RISK_PCT=0.015'] }, (t) => (out += t));
    // Under 0.015, ETHUSDT's budget goes from 1348 to 1011: the small open (1100) and the one of
    // 250 USD (1250) now break it; SOLUSDT's from 680 to 510: the open of 600 does. XRPUSDT and
    // BTCUSDT were over budget already.
    expect(summary.newlyBlocked.count).to.equal(3);
    expect(summary.newlyAllowed.count).to.equal(0);
    expect(summary.symbols.map((s) => [s.symbol, s.newlyBlocked])).to.deep.equal([['ETHUSDT', 2], ['SOLUSDT', 1]]);
    expect(summary.newlyBlocked.notionalUsd).to.equal(100 + 250 + 600);
    expect(out).to.match(/newly blocked\s+3\s+950\.00/);
    expect(out).to.include('BASE_RISK_PCT=0.015 (configured 0.02)');
    expect(out).to.include('fidelity: judged again under the configured parameters, every decision comes out as logged');
  });

  it('refuses a bad parameter with an error naming it', () => {
    expect(() => parseReplaySettings(['BASE_RISK_PCT=2'], CONFIGURED)).to.throw(ReplayParamError, /^--set BASE_RISK_PCT: expected a number in \(0,1\], got "2"/);
    expect(() => parseReplaySettings(['STALE_SEC=10'], CONFIGURED)).to.throw(ReplayParamError, /^--set STALE_SEC: not a replay parameter; use one of BASE_RISK_PCT, /);
    expect(() => parseReplaySettings(['ALPHA_HEAT'], CONFIGURED)).to.throw(ReplayParamError, /^--set ALPHA_HEAT: expected NAME=VALUE/);
    expect(() => parseReplaySettings(['MIN_BUDGET_K=20000'], CONFIGURED)).to.throw(ReplayParamError, /^--set MIN_BUDGET_K: must be <= MAX_BUDGET_K \(10000\)/);
    expect(() => parseReplaySettings(['VIOLATION_WINDOW_MS=-1'], CONFIGURED)).to.throw(ReplayParamError, /^--set VIOLATION_WINDOW_MS: expected a number of ms/);
  });

  it('counts the plans in flight a decision saw, as logged: a block caused by another plan\'s reservation replays as a block', async () => {
    const inflight = new RedisKeys('inflight');
    await writeBook(client, inflight, CONFIGURED);
    // ETHUSDT: long 1000 USD against a budget of 1348. The first open reserves 250; the second,
    // 200 on its own (1200), is blocked only by the first one's reservation (1450).
    const gate = new BudgetGate({ redisUrl: redis.server.url, keyPrefix: 'inflight', now: () => DECIDED_MS, instanceId: 'gov-2', timeoutMs: LOADED_HOST_TIMEOUT_MS });
    try {
      await gate.ready();
      expect(await gate.evaluate({ planId: 'first', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 250 })).to.include({ reason: 'within_budget' });
      expect(await gate.evaluate({ planId: 'second', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 200 })).to.include({ wouldBlock: true, reservedUsd: 250, projectedNotionalUsd: 1450 });
      await eventually(async () => (await client.xlen(inflight.decisionLogStream)) === 2);
    } finally {
      await gate.close();
    }
    const decisions: LoggedDecision[] = [];
    await forEachDecision(client, inflight, 0, Date.now() + 1000, (d) => decisions.push(d));
    const second = decisions.find((d) => d.planId === 'second')!;
    expect(second.reservedUsd).to.equal(250);
    expect(rejudge(second, { budget: CONFIGURED })).to.include({ wouldBlock: true, detail: 'projected_over_budget', reservedUsd: 250, projectedNotionalUsd: 1450 });
    const baseline = new ReplayTally({ budget: CONFIGURED }, CONFIGURED);
    for (const d of decisions) baseline.add(d);
    expect(baseline.result()).to.include({ rejudged: 2, unchanged: 2, baselineDiffers: 0 });
    // A budget of 1500 (BASE_RISK_PCT 0.0223) has room for both.
    const roomier = parseReplaySettings(['BASE_RISK_PCT=0.0223'], CONFIGURED);
    expect(rejudge(second, roomier)).to.include({ reason: 'within_budget', reservedUsd: 250 });
    const tally = new ReplayTally(roomier, CONFIGURED);
    for (const d of decisions) tally.add(d);
    expect(tally.result().newlyAllowed.count).to.equal(1);
  });
});
