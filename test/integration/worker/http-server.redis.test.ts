import { expect } from 'chai';
import sinon from 'sinon';
import { BudgetGate } from '../../../plugin/budget-gate';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import { startHttpServer, type HttpServerHandle, type HttpServerOptions } from '../../../lib/worker/http-server';
import { createRedisClient } from '../../../lib/redis/client';
import { captureLogs } from '../../support/log-capture';
import { freePort, LocalRedisServer } from '../../support/local-redis-server';
import type { RedisClient } from '../../../lib/redis/client';
import { documentedRequests, servedApp, type DocumentedRequest } from '../../support/http-app';
import { OpenApiSchemas, type MediaSite } from '../../support/openapi-check';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { upstreamBudgetFields } from '../../support/gate-fixtures';
import { seedGuideScenario, workerConfig } from '../../support/seed';

const NOW = Date.UTC(2026, 0, 27, 22, 34, 3);
const TOKEN = 'test-token-0123456789abcdef';
/** The document of an app served as `serve()` serves it (a gate that releases, no readiness). */
let documented: { paths: Record<string, object> };
let schemas: OpenApiSchemas;

/** Asserts that a live answer matches the document's schema for its operation and status. */
function expectDocumented(site: MediaSite, body: unknown): void {
  expect(schemas.errors(site, body), `${site.method} ${site.path} ${site.status}`).to.deep.equal([]);
}

describe('HTTP API', () => {
  before(async () => {
    const { app } = await servedApp({ readiness: undefined });
    documented = app.swagger() as never;
    schemas = new OpenApiSchemas(documented as never);
    await app.close();
  });

  const redis = useRedisServer();
  let client: RedisClient;
  let gateClient: RedisClient;
  let worker: BudgetWorker;
  let gate: BudgetGate;
  let http: HttpServerHandle;
  let clock: sinon.SinonFakeTimers;
  const url = (path: string, server: HttpServerHandle = http) => `http://127.0.0.1:${server.port}${path}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url(path), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const serve = (extra: Partial<HttpServerOptions> = {}) =>
    startHttpServer({ host: '127.0.0.1', port: 0, registry: worker.metrics.registry, redis: client, worker, gate, instanceId: 'test-worker', maxBudgetAgeSec: 15, ...extra });

  beforeEach(async () => {
    clock = sinon.useFakeTimers({ now: NOW, toFake: ['Date'] });
    client = await connectedClient(redis.server);
    gateClient = await connectedClient(redis.server, 'gate');
    await client.flushall();
    worker = new BudgetWorker({
      config: workerConfig(redis.server, { P28_MODE: 'enforce' }),
      redis: client,
      heatSource: { read: async () => ({ value: 0.65, source: 'live' }) },
    });
    // The host clock is faked (sinon): this gate judges on it, not on Redis's clock.
    gate = new BudgetGate({ redis: gateClient, registry: worker.metrics.registry, now: () => Date.now() });
    http = await serve();
  });
  afterEach(async () => {
    await http.close();
    await gate.close();
    await worker.stop();
    client.disconnect();
    gateClient.disconnect();
    clock.restore();
  });

  /** The guide's Test 1 under enforce: BTCUSDT 0.5 @ 100000 against a budget of 1348. */
  async function guideBudgets(): Promise<void> {
    await seedGuideScenario(client, { timestampSec: NOW / 1000 });
    await seedGuideScenario(client, { timestampSec: NOW / 1000, symbol: 'ETHUSDT', positionAmt: '0.01', entryPrice: '3000' });
    expect((await worker.runOnce()).result).to.equal('ok');
  }

  describe('GET /health and /metrics', () => {
    it('GET /health answers 200 with mode, Redis, role and the age of the last successful cycle', async () => {
      const before = await fetch(url('/health'));
      expect(before.status).to.equal(200);
      const first = await before.json();
      expect(first).to.deep.equal({
        status: 'healthy',
        service: 'p2.8-portfolio-risk-governor',
        mode: 'enforce',
        mode_source: 'env',
        redis: 'connected',
        role: 'standby',
        budgets_age_sec: null,
        last_success_age_sec: null,
        last_cycle_result: null,
        instance: 'test-worker',
        positions: null,
      });
      expectDocumented({ path: '/health', method: 'get', status: '200' }, first);

      await seedGuideScenario(client, { timestampSec: NOW / 1000 });
      const report = await worker.runOnce();
      clock.tick(2500);
      const after = await fetch(url('/health'));
      expect(after.headers.get('content-type')).to.match(/^application\/json/);
      const body = (await after.json()) as { last_success_age_sec: number; budgets_age_sec: number };
      expect(body).to.include({ status: 'healthy', role: 'leader', last_cycle_result: 'ok', redis: 'connected', mode_source: 'env' });
      expect(body).to.deep.include({ positions: { stale: 0, unknown: 0, invalid: 0, feed: 'complete' } });
      expectDocumented({ path: '/health', method: 'get', status: '200' }, body);
      expect(body.budgets_age_sec).to.be.closeTo(2.5 - report.durationMs / 1000, 0.11);
      expect(body.last_success_age_sec).to.be.closeTo(2.5 - report.durationMs / 1000, 0.11);
    });

    it('renders whatever the health evaluation it is given returns', async () => {
      const own = await serve({
        health: async () => ({ code: 503, body: { status: 'unhealthy', service: 'p2.8-portfolio-risk-governor', mode: 'shadow', mode_source: 'env', redis: 'disconnected', role: 'standby', budgets_age_sec: null, last_success_age_sec: null, last_cycle_result: null, positions: null, instance: 'x' } }),
      });
      try {
        const res = await fetch(url('/health', own));
        expect(res.status).to.equal(503);
        expect(await res.json()).to.include({ status: 'unhealthy', instance: 'x' });
      } finally {
        await own.close();
      }
    });

    it('GET /metrics serves the worker registry, with the metrics of the decision gate, in the Prometheus text format', async () => {
      await post('/v1/decisions', { planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.01 });
      const res = await fetch(url('/metrics'));
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal(worker.metrics.registry.contentType);
      const text = await res.text();
      expect(text).to.contain('p28_enforce_mode 1');
      expect(text).to.contain('p28_redis_write_fail_total 0');
      expect(text, text.split('\n').filter((l) => l.startsWith('p28_gate_decisions_total')).join('\n')).to.match(/^p28_gate_decisions_total\{[^}]*reason="no_budget_data"[^}]*\} 1$/m);
    });

    it('GET /health answers 503 with redis disconnected while Redis is down, and 200 again when it is back', async () => {
      const own = await LocalRedisServer.start();
      const ownClient = await connectedClient(own);
      const ownHttp = await serve({ redis: ownClient });
      try {
        await own.kill();
        const res = await fetch(url('/health', ownHttp));
        expect(res.status).to.equal(503);
        const body = await res.json();
        expect(body).to.include({ status: 'unhealthy', redis: 'disconnected' });
        expectDocumented({ path: '/health', method: 'get', status: '503' }, body);
        await own.restart();
        await eventually(async () => (await fetch(url('/health', ownHttp))).status === 200, 10000, 100);
      } finally {
        await ownHttp.close();
        ownClient.disconnect();
        await own.stop();
      }
    });

    it('GET /health answers 503 when Redis is connected but does not answer PING', async () => {
      const own = await LocalRedisServer.start();
      const ownClient = await connectedClient(own);
      const ownHttp = await serve({ redis: ownClient, redisPingTimeoutMs: 100 });
      try {
        own.pause();
        const res = await fetch(url('/health', ownHttp));
        expect(res.status).to.equal(503);
        expect(await res.json()).to.include({ redis: 'disconnected' });
      } finally {
        own.resume();
        await ownHttp.close();
        ownClient.disconnect();
        await own.stop();
      }
    });
  });

  describe('POST /v1/decisions', () => {
    it('blocks an add to an over-budget position and allows its reduction, exactly as the in-process gate decides', async () => {
      await guideBudgets();
      const add = { planId: 'p-add', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.01 } as const;
      const trim = { planId: 'p-trim', symbol: 'BTCUSDT', action: 'ADJUST', side: 'SELL', qty: 0.1 } as const;
      for (const plan of [add, trim]) {
        const res = await post('/v1/decisions', plan);
        expect(res.status).to.equal(200);
        const body = await res.json();
        expect(body).to.deep.equal(await gate.evaluate(plan));
        expectDocumented({ path: '/v1/decisions', method: 'post', status: '200' }, body);
      }
      expect(await (await post('/v1/decisions', add)).json()).to.include({ allow: false, reason: 'p28_budget_violation', enforced: true, detail: 'projected_over_budget' });
      expect(await (await post('/v1/decisions', trim)).json()).to.include({ allow: true, reason: 'reduce_only' });
    });

    it('allows a small open within budget with within_budget', async () => {
      await guideBudgets();
      const body = await (await post('/v1/decisions', { planId: 'p', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: 0.1 })).json();
      expect(body).to.include({ allow: true, reason: 'within_budget', failOpen: false });
    });

    it('counts reservations: decisions and GET /v1/budgets show reservedUsd, DELETE /v1/reservations/{symbol}/{planId} releases one', async () => {
      await guideBudgets();
      const open = (planId: string) => post('/v1/decisions', { planId, symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: 0.1 }).then((r) => r.json());
      // ETHUSDT holds 0.01 @ 3000 = 30 USD; each plan adds 0.1 (300 USD) and reserves it.
      expect(await open('p-1')).to.include({ reason: 'within_budget', reservedUsd: 0, projectedNotionalUsd: 330 });
      const second = await open('p-2');
      expect(second).to.include({ reason: 'within_budget', reservedUsd: 300, projectedNotionalUsd: 630 });
      expectDocumented({ path: '/v1/decisions', method: 'post', status: '200' }, second);
      const reservedOf = async () => {
        const listed = (await (await fetch(url('/v1/budgets'))).json()) as { budgets: Array<Record<string, unknown>> };
        expectDocumented({ path: '/v1/budgets', method: 'get', status: '200' }, listed);
        const eth = listed.budgets.find((b) => b.symbol === 'ETHUSDT')!;
        expect(eth).to.not.have.property('reservations');
        return eth.reservedUsd;
      };
      expect(await reservedOf()).to.equal(600);

      const release = (symbol: string, planId: string) => fetch(url(`/v1/reservations/${symbol}/${encodeURIComponent(planId)}`), { method: 'DELETE' });
      const released = await release('ETHUSDT', 'p-1');
      expect(released.status).to.equal(200);
      const body = await released.json();
      expect(body).to.deep.equal({ symbol: 'ETHUSDT', planId: 'p-1', released: true });
      expectDocumented({ path: '/v1/reservations/{symbol}/{planId}', method: 'delete', status: '200' }, body);
      expect(await (await release('ETHUSDT', 'p-1')).json()).to.include({ released: false });
      expect(await reservedOf()).to.equal(300);
      expect((await release('eth*', 'p-2')).status).to.equal(400);
      expect((await release('ETHUSDT', 'x'.repeat(201))).status).to.equal(400);
      expect(await (await release('ETHUSDT', 'é/'.repeat(100))).json()).to.include({ released: false, planId: 'é/'.repeat(100) });
      expect(await (await fetch(url('/budget/ETHUSDT'))).json()).to.not.have.property('reservations');
    });

    for (const [name, body] of [
      ['a symbol with a dash', { planId: 'p', symbol: 'BTC-USDT', action: 'OPEN' }],
      ['a negative qty', { planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: -1 }],
      ['an array', [1, 2]],
      ['a string', 'BTCUSDT'],
      ['null', null],
    ] as const) {
      it(`answers a body that fails the schema (${name}) with a 200 fail-open invalid_request decision`, async () => {
        const res = await post('/v1/decisions', JSON.stringify(body));
        expect(res.status).to.equal(200);
        const decision = await res.json();
        expect(decision).to.include({ allow: true, failOpen: true, reason: 'invalid_request' });
        expectDocumented({ path: '/v1/decisions', method: 'post', status: '200' }, decision);
      });
    }

    it('answers malformed JSON with 400 and a message', async () => {
      const res = await post('/v1/decisions', '{"planId": ');
      expect(res.status).to.equal(400);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error).to.equal('bad_request');
      expect(body.message).to.match(/JSON/);
    });

    it('answers a body that is not JSON (text/plain, form) with 415', async () => {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
        const res = await fetch(url('/v1/decisions'), { method: 'POST', headers: { 'content-type': type }, body: '{"planId":"p","symbol":"BTCUSDT","action":"OPEN"}' });
        expect(res.status, type).to.equal(415);
        expect(await res.json()).to.include({ error: 'unsupported_media_type' });
      }
    });

    it('answers a body over 64 KiB with 413, and takes one just under it', async () => {
      const big = { planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', note: 'x'.repeat(64 * 1024) };
      expect((await post('/v1/decisions', big)).status).to.equal(413);
      const fits = { planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', note: 'x'.repeat(60 * 1024) };
      expect((await post('/v1/decisions', fits)).status).to.equal(200);
    });

    it('fails open with redis_unavailable when the gate cannot reach Redis', async () => {
      const own = await LocalRedisServer.start();
      const ownClient = await connectedClient(own, 'gate');
      const ownGate = new BudgetGate({ redis: ownClient });
      const ownHttp = await serve({ gate: ownGate });
      try {
        await own.kill();
        const res = await fetch(url('/v1/decisions', ownHttp), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ planId: 'p', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 1 }),
        });
        expect(res.status).to.equal(200);
        expect(await res.json()).to.include({ allow: true, failOpen: true, reason: 'redis_unavailable' });
      } finally {
        await ownHttp.close();
        await ownGate.close();
        ownClient.disconnect();
        await own.stop();
      }
    });
  });

  describe('budget listings and the upstream endpoints', () => {
    it('GET /v1/budgets lists every budget hash sorted by symbol, and ?over=true only those over budget', async () => {
      await guideBudgets();
      const all = (await (await fetch(url('/v1/budgets'))).json()) as { count: number; budgets: Array<Record<string, string>> };
      expect(all.count).to.equal(2);
      expect(all.budgets.map((b) => b.symbol)).to.deep.equal(['BTCUSDT', 'ETHUSDT']);
      // The contract's fields as stored (the writer's fencing epoch is internal).
      const { writer_epoch: epoch, ...stored } = await client.hgetall('quantum:portfolio:budget:BTCUSDT');
      expect(epoch).to.match(/^\d+$/);
      expect(all.budgets[0]).to.deep.equal({ ...stored, reservedUsd: 0 });
      expectDocumented({ path: '/v1/budgets', method: 'get', status: '200' }, all);
      const over = (await (await fetch(url('/v1/budgets?over=true'))).json()) as { count: number; budgets: Array<Record<string, string>> };
      expect(over.budgets.map((b) => b.symbol)).to.deep.equal(['BTCUSDT']);
      expect((await fetch(url('/v1/budgets?over=maybe'))).status).to.equal(400);
    });

    it('GET /v1/budgets pages with a cursor and a limit, and refuses an unusable cursor or limit with 400', async () => {
      await guideBudgets();
      type Page = { count: number; budgets: Array<Record<string, string>>; next_cursor: string | null };
      const first = (await (await fetch(url('/v1/budgets?limit=1'))).json()) as Page;
      expect(first.budgets.map((b) => b.symbol)).to.deep.equal(['BTCUSDT']);
      expect(first.next_cursor).to.equal('BTCUSDT');
      expectDocumented({ path: '/v1/budgets', method: 'get', status: '200' }, first);
      const second = (await (await fetch(url(`/v1/budgets?limit=1&cursor=${first.next_cursor}`))).json()) as Page;
      expect(second.budgets.map((b) => b.symbol)).to.deep.equal(['ETHUSDT']);
      expect(second.next_cursor).to.equal(null);
      const all = (await (await fetch(url('/v1/budgets'))).json()) as Page;
      expect(all.next_cursor).to.equal(null);
      for (const bad of ['limit=0', 'limit=5001', 'limit=abc', 'cursor=not%20a%20symbol']) {
        const res = await fetch(url(`/v1/budgets?${bad}`));
        expect(res.status, bad).to.equal(400);
        expect(((await res.json()) as { message: string }).message, bad).to.match(/query parameter (limit|cursor)/);
      }
    });

    it('GET /budget/{symbol} answers the hash as stored, or 404 {"error":"no_budget_data"}', async () => {
      await guideBudgets();
      const res = await fetch(url('/budget/BTCUSDT'));
      expect(res.status).to.equal(200);
      const hash = await res.json();
      expect(hash).to.deep.equal(await client.hgetall('quantum:portfolio:budget:BTCUSDT'));
      expect(hash).to.include({ budget_usd: '1348', mode: 'enforce' });
      expectDocumented({ path: '/budget/{symbol}', method: 'get', status: '200' }, hash);
      const missing = await fetch(url('/budget/XRPUSDT'));
      expect(missing.status).to.equal(404);
      expect(await missing.json()).to.deep.equal({ error: 'no_budget_data' });
      // A name that is no symbol has no budget: 404, as upstream answered for a key it did not find.
      expect((await fetch(url('/budget/btc*'))).status).to.equal(404);
    });

    it('GET /budget/{symbol} matches the symbol case-insensitively (btcusdt is BTCUSDT)', async () => {
      await guideBudgets();
      const res = await fetch(url('/budget/btcusdt'));
      expect(res.status).to.equal(200);
      expect(await res.json()).to.include({ symbol: 'BTCUSDT', budget_usd: '1348' });
    });

    it('POST /budget/check answers the upstream shape: violation, budget_usd, over_budget, mode, enforce', async () => {
      await guideBudgets();
      const over = await (await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=50000'), { method: 'POST' })).json();
      expect(over).to.deep.equal({ violation: true, budget_usd: 1348, over_budget: 48652, mode: 'enforce', enforce: true });
      expectDocumented({ path: '/budget/check', method: 'post', status: '200' }, over);
      const within = await (await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=1000'), { method: 'POST' })).json();
      expect(within).to.deep.equal({ violation: false, budget_usd: 1348, over_budget: 0, mode: 'enforce', enforce: true });
    });

    it('POST /budget/check fails open with a reason when there is no budget or it is stale', async () => {
      await guideBudgets();
      const none = await (await fetch(url('/budget/check?symbol=XRPUSDT&position_notional=50000'), { method: 'POST' })).json();
      expect(none).to.deep.equal({ violation: false, budget_usd: null, over_budget: 0, mode: 'enforce', enforce: true, reason: 'no_budget_data' });
      expectDocumented({ path: '/budget/check', method: 'post', status: '200' }, none);
      clock.tick(61_000);
      const stale = await (await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=50000'), { method: 'POST' })).json();
      expect(stale).to.include({ violation: false, reason: 'stale_budget_data' });
    });

    it('POST /budget/check judges freshness by the gate\'s one rule: a hash dated more than maxClockSkewMs (5 s) ahead is stale, 4 s ahead is not', async () => {
      await guideBudgets();
      const check = async () => (await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=50000'), { method: 'POST' })).json();
      const decide = async () => (await fetch(url('/v1/decisions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ planId: 'f', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.1 }) })).json();
      clock.setSystemTime(NOW - 4_000);
      expect(await check()).to.include({ violation: true, budget_usd: 1348 });
      expect(await decide()).to.include({ reason: 'p28_budget_violation' });
      clock.setSystemTime(NOW - 10_000);
      expect(await check()).to.include({ violation: false, reason: 'stale_budget_data', budget_usd: 1348 });
      expect(await decide()).to.include({ reason: 'stale_budget_data', detail: 'timestamp_in_future' });
    });

    for (const query of [
      'symbol=BTCUSDT',
      'symbol=BTCUSDT&position_notional=abc',
      'symbol=BTCUSDT&position_notional=-1',
      'symbol=BTCUSDT&position_notional=0x10',
      'symbol=BTCUSDT&position_notional=0b11',
      'symbol=BTCUSDT&position_notional=',
      'symbol=BTCUSDT&position_notional=%20%20',
      'symbol=BTCUSDT&position_notional=1e999',
      'symbol=BTCUSDT&position_notional=nan',
      'symbol=BTCUSDT&position_notional=inf',
      'position_notional=1',
    ]) {
      it(`POST /budget/check?${query} answers 422 naming the parameter, in FastAPI's detail shape`, async () => {
        const res = await fetch(url(`/budget/check?${query}`), { method: 'POST' });
        expect(res.status).to.equal(422);
        const body = (await res.json()) as { message: string; detail: { loc: string[] }[] };
        expect(body.message).to.match(/symbol|position_notional/);
        expect(body.detail[0]!.loc[0]).to.equal('query');
        expect(body.detail[0]!.loc[1]).to.be.oneOf(['symbol', 'position_notional']);
      });
    }

    it('POST /budget/check reads a number with surrounding blanks and an exponent, as upstream did', async () => {
      await guideBudgets();
      const res = await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=%205e4%20'), { method: 'POST' });
      expect(await res.json()).to.deep.equal({ violation: true, budget_usd: 1348, over_budget: 48652, mode: 'enforce', enforce: true });
    });

    it('POST /budget/check fails open as invalid_request on a name that is no symbol, and matches a lower-case one', async () => {
      await guideBudgets();
      expect(await (await fetch(url('/budget/check?symbol=b*&position_notional=1'), { method: 'POST' })).json()).to.include({ violation: false, reason: 'invalid_request' });
      expect(await (await fetch(url('/budget/check?symbol=btcusdt&position_notional=50000'), { method: 'POST' })).json()).to.include({ violation: true, budget_usd: 1348 });
    });

    for (const [name, init] of [
      ['no body and no content type (curl -X POST)', {}],
      ["an empty form body (curl -d '')", { body: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
      ['an empty body sent as application/json', { body: '', headers: { 'content-type': 'application/json' } }],
      ['a JSON body it does not use', { body: '{"symbol":"XRPUSDT"}', headers: { 'content-type': 'application/json' } }],
      ['a text body', { body: 'hello', headers: { 'content-type': 'text/plain' } }],
    ] as const) {
      it(`POST /budget/check ignores ${name}, as the FastAPI service did, and answers 200`, async () => {
        await guideBudgets();
        const res = await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=50000'), { method: 'POST', ...init });
        expect(res.status).to.equal(200);
        expect(await res.json()).to.include({ violation: true, budget_usd: 1348 });
      });
    }

    it('POST /budget/check answers 413 to a body over 64 KiB, which upstream read and ignored', async () => {
      const res = await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=1'), { method: 'POST', body: 'x'.repeat(70 * 1024), headers: { 'content-type': 'text/plain' } });
      expect(res.status).to.equal(413);
    });

    it('POST /budget/check and /v1/decisions judge a hash in the upstream 10-field shape instead of answering invalid_budget_data', async () => {
      await client.hset('quantum:portfolio:budget:BTCUSDT', upstreamBudgetFields('BTCUSDT', NOW / 1000));
      const check = await (await fetch(url('/budget/check?symbol=BTCUSDT&position_notional=5000'), { method: 'POST' })).json();
      expect(check).to.deep.equal({ violation: true, budget_usd: 1348, over_budget: 3652, mode: 'enforce', enforce: true });
      const over = await (await post('/v1/decisions', { planId: 'p1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 5000 })).json();
      expect(over).to.include({ allow: false, reason: 'p28_budget_violation', detail: 'projected_over_budget,position_unknown' });
      const fits = await (await post('/v1/decisions', { planId: 'p2', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 500 })).json();
      expect(fits).to.include({ allow: true, reason: 'within_budget', detail: 'position_unknown' });
    });

    it('GET /budget/{symbol} and /v1/budgets answer 503 redis_unavailable while Redis is down', async () => {
      const own = await LocalRedisServer.start();
      const ownClient = await connectedClient(own);
      const ownHttp = await serve({ redis: ownClient });
      try {
        await own.kill();
        for (const path of ['/budget/BTCUSDT', '/v1/budgets']) {
          const res = await fetch(url(path, ownHttp));
          expect(res.status).to.equal(503);
          expect(await res.json()).to.deep.equal({ error: 'redis_unavailable' });
        }
      } finally {
        await ownHttp.close();
        ownClient.disconnect();
        await own.stop();
      }
    });
  });

  describe('logging failed requests', () => {
    it('logs a failing route once per change of cause, however many requests fail and whatever else succeeds between them', async () => {
      const own = await LocalRedisServer.start();
      const ownClient = await connectedClient(own);
      const { logger, lines } = captureLogs();
      const ownHttp = await serve({ redis: ownClient, logger });
      try {
        await own.kill();
        for (let i = 0; i < 5; i++) {
          expect((await fetch(url('/v1/budgets', ownHttp))).status).to.equal(503);
          expect((await fetch(url('/metrics', ownHttp))).status).to.equal(200);
        }
        const failed = lines.filter((l) => l.msg === 'http request failed');
        expect(failed).to.have.length(1);
        expect(failed[0]).to.include({ method: 'GET', path: '/v1/budgets', error: 'redis_unavailable' });
        expect(lines.filter((l) => l.msg === 'http requests succeed again')).to.have.length(0);
      } finally {
        await ownHttp.close();
        ownClient.disconnect();
        await own.stop();
      }
    });
  });

  describe('POST /test/inject_portfolio_state', () => {
    it('answers 403 unless test mode is on', async () => {
      const res = await fetch(url('/test/inject_portfolio_state?equity_usd=100000'), { method: 'POST' });
      expect(res.status).to.equal(403);
      expect(await client.exists('quantum:state:portfolio')).to.equal(0);
    });

    it('in test mode writes the portfolio state with a 120 s TTL, in a form the worker reads', async () => {
      const own = await serve({ testMode: true });
      try {
        const res = await fetch(url('/test/inject_portfolio_state?equity_usd=100000&drawdown=0.05', own), { method: 'POST' });
        expect(res.status).to.equal(200);
        const body = await res.json();
        expectDocumented({ path: '/test/inject_portfolio_state', method: 'post', status: '200' }, body);
        expect(await client.hgetall('quantum:state:portfolio')).to.deep.equal({ equity_usd: '100000', drawdown: '0.05', timestamp: String(NOW / 1000) });
        const ttl = await client.ttl('quantum:state:portfolio');
        expect(ttl).to.be.within(110, 120);
        await client.hset('quantum:position:snapshot:BTCUSDT', { position_amt: '0.5', entry_price: '100000' });
        expect((await worker.runOnce()).portfolio.source).to.equal('fresh');
        expect((await fetch(url('/test/inject_portfolio_state?equity_usd=-5', own), { method: 'POST' })).status).to.equal(422);
        expect((await fetch(url('/test/inject_portfolio_state?equity_usd=0x10', own), { method: 'POST' })).status).to.equal(422);
        // Numbers in a JSON body are not read, as FastAPI read them from the query only: 422.
        const inBody = await fetch(url('/test/inject_portfolio_state', own), { method: 'POST', body: '{"equity_usd": 100000}', headers: { 'content-type': 'application/json' } });
        expect(inBody.status).to.equal(422);
        // The upstream proof script's call: curl -X POST with the numbers in the query, no body.
        const proof = await fetch(url('/test/inject_portfolio_state?equity_usd=100000&drawdown=0.0', own), { method: 'POST', body: '', headers: { 'content-type': 'application/json' } });
        expect(((await proof.json()) as { success: boolean }).success).to.equal(true);
      } finally {
        await own.close();
      }
    });
  });

  describe('methods, HEAD and /openapi.json', () => {
    for (const [method, path] of [['GET', '/'], ['GET', '/healthz'], ['GET', '/metrics/x'], ['GET', '/v1/decision']] as const) {
      it(`answers 404 to ${method} ${path}`, async () => {
        expect((await fetch(url(path), { method })).status).to.equal(404);
      });
    }

    for (const [method, path, allow] of [
      ['POST', '/health', 'GET, HEAD'],
      ['GET', '/v1/decisions', 'POST'],
      ['DELETE', '/budget/BTCUSDT', 'GET, HEAD'],
      ['GET', '/budget/check', 'POST'],
      ['PUT', '/v1/budgets', 'GET, HEAD'],
    ] as const) {
      it(`answers 405 with Allow: ${allow} to ${method} ${path}`, async () => {
        const res = await fetch(url(path), { method });
        expect(res.status).to.equal(405);
        expect(res.headers.get('allow')).to.equal(allow);
      });
    }

    it('answers HEAD with the status of GET and no body, for every GET the document describes', async () => {
      await guideBudgets();
      const gets = documentedRequests(documented).filter((r) => r.method === 'GET');
      expect(gets.map((r) => r.path)).to.include.members(['/health', '/metrics', '/v1/budgets', '/budget/{symbol}', '/openapi.json']);
      for (const { url: path } of gets) {
        const [get, head] = [await fetch(url(path)), await fetch(url(path), { method: 'HEAD' })];
        expect(head.status, path).to.equal(get.status);
        expect(await head.text(), path).to.equal('');
      }
    });

    it('answers 405 with an Allow header to every documented path asked with a method it does not serve', async () => {
      const byPath = new Map<string, DocumentedRequest[]>();
      for (const request of documentedRequests(documented)) byPath.set(request.path, [...(byPath.get(request.path) ?? []), request]);
      for (const [path, requests] of byPath) {
        const methods = requests.map((r) => r.method);
        const allow = methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
        const other = ['PUT', 'PATCH', 'POST', 'DELETE'].find((m) => !methods.includes(m))!;
        const res = await fetch(url(requests[0]!.url), { method: other });
        expect(res.status, `${other} ${path}`).to.equal(405);
        expect(res.headers.get('allow')?.split(', '), `${other} ${path}`).to.have.members(allow);
        expect(await res.json()).to.include({ error: 'method_not_allowed' });
      }
    });

    it('serves /openapi.json: the document of this server', async () => {
      const res = await fetch(url('/openapi.json'));
      expect(res.status).to.equal(200);
      const doc = (await res.json()) as { openapi: string; paths: object };
      expect(doc.openapi).to.equal('3.1.0');
      expect(doc.paths).to.deep.equal(documented.paths);
    });
  });

  describe('bearer token (P28_API_TOKEN)', () => {
    let secured: HttpServerHandle;
    beforeEach(async () => {
      secured = await serve({ apiToken: TOKEN });
    });
    afterEach(async () => {
      await secured.close();
    });

    it('leaves /health and /metrics open', async () => {
      expect((await fetch(url('/health', secured))).status).to.equal(200);
      expect((await fetch(url('/metrics', secured))).status).to.equal(200);
      expect((await fetch(url('/metrics', secured), { method: 'HEAD' })).status).to.equal(200);
    });

    it('answers every operation the document secures with 401 without the token or with a wrong one, and serves it with the token', async () => {
      const operations = documentedRequests(documented).filter((r) => !r.isPublic);
      expect(operations.map((r) => `${r.method} ${r.path}`)).to.include.members(['POST /v1/decisions', 'GET /v1/budgets', 'GET /openapi.json', 'DELETE /v1/reservations/{symbol}/{planId}']);
      for (const { method: documentedMethod, url: path, body } of operations) {
        for (const method of documentedMethod === 'GET' ? ['GET', 'HEAD'] : [documentedMethod]) {
          const headers = (auth?: string): Record<string, string> => ({ ...(body ? { 'content-type': 'application/json' } : {}), ...(auth ? { authorization: auth } : {}) });
          for (const auth of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, 'Bearer ']) {
            const res = await fetch(url(path, secured), { method, headers: headers(auth), body });
            expect(res.status, `${method} ${path} ${String(auth)}`).to.equal(401);
            expect(res.headers.get('www-authenticate')).to.equal('Bearer');
            expect(await res.text()).to.not.contain(TOKEN.slice(0, 8));
          }
          const ok = await fetch(url(path, secured), { method, headers: headers(`Bearer ${TOKEN}`), body });
          expect(ok.status, `${method} ${path}`).to.not.equal(401);
        }
      }
    });

    it('serves the operations the document leaves open (security: []) without the token', async () => {
      for (const { method, url: path } of documentedRequests(documented).filter((r) => r.isPublic)) {
        expect((await fetch(url(path, secured), { method })).status, `${method} ${path}`).to.not.equal(401);
      }
    });
  });

  it('never puts the token or a Redis password into an answer or a log line', async () => {
    const password = 's3cret-redis-pw';
    const unreachable = createRedisClient({ url: `redis://:${password}@127.0.0.1:${await freePort()}`, profile: 'worker' });
    unreachable.on('error', () => undefined);
    const { logger, lines } = captureLogs();
    const own = await serve({ apiToken: TOKEN, redis: unreachable, testMode: true, logger });
    const answers: string[] = [];
    try {
      for (const auth of [`Bearer ${TOKEN}`, `Bearer ${TOKEN}-wrong`, 'Bearer nope']) {
        for (const { method, url: path, body } of documentedRequests(documented)) {
          const res = await fetch(url(path, own), { method, headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
          answers.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
        }
      }
    } finally {
      await own.close();
      unreachable.disconnect();
    }
    expect(answers.filter((a) => a.startsWith('503 '))).to.have.length.greaterThan(0);
    expect(lines.length).to.be.greaterThan(0);
    for (const text of [...answers, ...lines.map((l) => JSON.stringify(l))]) {
      expect(text).to.not.contain(TOKEN);
      expect(text).to.not.contain(password);
    }
  });
});
