import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import type { RedisClient } from '../../../lib/redis/client';
import { RedisKeys } from '../../../lib/redis/keys';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { BudgetGate } from '../../../plugin/budget-gate';
import { DECISION_LOG_FIELDS, DecisionLogEntry, readLoggedDecision, unpackDecisionLogEntry } from '../../../types/decision-log-entry';
import { budgetFields } from '../../support/gate-fixtures';
import { freePort } from '../../support/local-redis-server';
import { PYTHON_PACKAGE_DIR, requirePython } from '../../support/python';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';

const run = promisify(execFile);
const KEY = 'quantum:portfolio:budget:ETHUSDT';
const FLAT = { mode: 'enforce', position_amt: 0, position_notional_usd: 0, over_budget_usd: 0 } as const;

interface Verdict {
  block: boolean;
  reason: string;
  fail_open: boolean;
  elapsed_sec: number;
  decision: Record<string, unknown> | null;
  misconfigured: Record<string, number>;
}

describe('the Python package clients/python', function () {
  this.timeout(60000);
  let python: string;
  before(function () {
    python = requirePython(this);
  });

  /** Runs Python code with the package importable; its stdout. */
  async function py(code: string, env: Record<string, string> = {}): Promise<string> {
    const { stdout } = await run(python, ['-c', code], { cwd: PYTHON_PACKAGE_DIR, timeout: 20000, env: { ...process.env, ...env } });
    return stdout.trim();
  }

  it('ships the same decision scripts as the Node package', () => {
    for (const file of ['decide-plan-1.lua', 'release-reservation-1.lua']) {
      const node = readFileSync(join(__dirname, '..', '..', '..', 'lib', 'redis', 'lua', file), 'utf8');
      expect(readFileSync(join(PYTHON_PACKAGE_DIR, 'p28_budget_gate', 'lua', file), 'utf8'), file).to.equal(node);
    }
  });

  describe('in-process gate and Node gate on one Redis', () => {
    const redis = useRedisServer();
    let admin: RedisClient;
    let client: RedisClient;
    let gate: BudgetGate;
    beforeEach(async () => {
      admin = await connectedClient(redis.server);
      client = await connectedClient(redis.server, 'gate', 1000);
      await admin.flushall();
      await admin.hset(KEY, budgetFields(FLAT));
      gate = new BudgetGate({ redis: client, registry: new Registry(), timeoutMs: 1000 });
    });
    afterEach(async () => {
      await gate.close();
      client.disconnect();
      admin.disconnect();
    });

    const pyGate = (body: string) =>
      py(['import json, redis', 'from p28_budget_gate import BudgetGate', `gate = BudgetGate(redis.Redis(port=${redis.server.port}, decode_responses=True), timeout_sec=1)`, body].join('\n'));

    it('sees in Python a reservation made in Node, and the reverse', async () => {
      expect(await gate.evaluate({ planId: 'node-1', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 600 })).to.include({ reason: 'within_budget' });
      const seen = JSON.parse(await pyGate("print(json.dumps(gate.evaluate({'planId': 'py-1', 'symbol': 'ETHUSDT', 'action': 'OPEN', 'side': 'BUY', 'notionalUsd': 600}).as_dict()))"));
      expect(seen).to.include({ reason: 'within_budget', reservedUsd: 600, projectedNotionalUsd: 1200 });
      expect(await gate.evaluate({ planId: 'node-2', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 200 })).to.include({
        reason: 'p28_budget_violation',
        reservedUsd: 1200,
      });
    });

    it('releases over either way in what the other reserved', async () => {
      await pyGate("print(gate.check_portfolio_budget('ETHUSDT', 'py-1', side='BUY', notional_usd=1000).reason)");
      expect(await gate.evaluate({ planId: 'node-1', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 1000 })).to.include({ reason: 'p28_budget_violation', reservedUsd: 1000 });
      expect(await gate.release('py-1', 'ETHUSDT')).to.equal(true);
      expect(await gate.evaluate({ planId: 'node-1', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', notionalUsd: 1000 })).to.include({ reason: 'within_budget', reservedUsd: 0 });
      expect(await pyGate("print(gate.release('node-1', 'ETHUSDT'), gate.release('node-1', 'ETHUSDT'))")).to.equal('True False');
      expect(await admin.hexists(KEY, 'reservations')).to.equal(0);
    });
  });

  describe('decision log entries of the Python gate, read by the Node reader', () => {
    const redis = useRedisServer();
    const STREAM = new RedisKeys().decisionLogStream;
    let admin: RedisClient;
    beforeEach(async () => {
      admin = await connectedClient(redis.server);
      await admin.flushall();
    });
    afterEach(() => admin.disconnect());

    /** The same requests through either gate: within budget, over it, a close, no hash, invalid, a '|' in a plan id. */
    const REQUESTS = [
      { planId: 'p-within', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: 0.1, reduceOnly: false },
      { planId: 'p-over', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: 0.5, notionalUsd: 500 },
      { planId: 'p-close', symbol: 'ETHUSDT', action: 'CLOSE' },
      { planId: 'p-none', symbol: 'solusdt', action: 'OPEN', side: 'SELL', notionalUsd: 1e-7 },
      { planId: 'p-bad', symbol: 'ETHUSDT', action: 'OPEN', qty: -1 },
      { planId: 'p|pipe', symbol: 'ETHUSDT', action: 'OPEN', notionalUsd: 100000 },
    ];

    /** The packed values of the stream's entries, oldest first, after clearing it. */
    async function takeEntries(): Promise<Array<[string, string[]]>> {
      const entries = (await admin.xrange(STREAM, '-', '+')) as Array<[string, string[]]>;
      await admin.del(STREAM);
      return entries;
    }

    it('writes, with decode_responses True or False, the entry the Node gate writes for the same decision but for via', async () => {
      const nowMs = Date.now();
      await admin.hset(KEY, budgetFields({ position_status: 'ok' }, nowMs));
      const nodeClient = await connectedClient(redis.server, 'gate', 1000);
      const nodeGate = new BudgetGate({ redis: nodeClient, registry: new Registry(), timeoutMs: 1000, instanceId: 'gov-host-1', reservationTtlMs: 0, now: () => nowMs });
      try {
        for (const request of REQUESTS) await nodeGate.evaluate(request as never);
        await eventually(async () => (await admin.xlen(STREAM)) === REQUESTS.length);
      } finally {
        await nodeGate.close();
        nodeClient.disconnect();
      }
      const fromNode = (await takeEntries()).map(([, flat]) => unpackDecisionLogEntry(flat[1]!)!);
      expect(fromNode.map((e) => e.via)).to.deep.equal(REQUESTS.map(() => 'node'));

      for (const decode of ['True', 'False']) {
        const out = await py(
          [
            'import json, redis',
            'from p28_budget_gate import BudgetGate',
            `gate = BudgetGate(redis.Redis(port=${redis.server.port}, decode_responses=${decode}), timeout_sec=1, instance_id='gov-host-1', reservation_ttl_sec=0, now=lambda: ${nowMs} / 1000)`,
            `reasons = [gate.evaluate(r).reason for r in json.loads(${JSON.stringify(JSON.stringify(REQUESTS))})]`,
            'gate.close()',
            'print(json.dumps([reasons, gate.counters.snapshot()]))',
          ].join('\n'),
        );
        const [reasons, counters] = JSON.parse(out) as [string[], Record<string, number>];
        expect(reasons, decode).to.deep.equal(['within_budget', 'p28_budget_violation', 'reduce_only', 'no_budget_data', 'invalid_request', 'p28_budget_violation']);
        expect(counters, decode).to.include({ decision_log_written: REQUESTS.length, 'decision_log_dropped{closed}': 0, 'decision_log_dropped{queue_full}': 0, 'decision_log_dropped{write_failed}': 0 });

        const entries = await takeEntries();
        expect(entries, decode).to.have.length(REQUESTS.length);
        entries.forEach(([id, flat], i) => {
          const values = unpackDecisionLogEntry(flat[1]!);
          expect(flat[0], 'one field, d').to.equal('d');
          expect(flat, 'one field, d').to.have.length(2);
          expect(values && Object.keys(values), 'every value, in order').to.deep.equal([...DECISION_LOG_FIELDS]);
          expect(DecisionLogEntry.safeParse(values).success, flat[1]).to.equal(true);
          expect(values, `${decode} ${REQUESTS[i]!.planId}`).to.deep.equal({ ...fromNode[i], via: 'python' });
          const read = readLoggedDecision(id, flat);
          expect(read, flat[1]).to.not.equal(undefined);
          expect(read).to.include({ tsMs: nowMs, planId: REQUESTS[i]!.planId.replace('|', '/'), via: 'python', gate: 'gov-host-1', reason: reasons[i] });
        });
        const [within, over] = entries.map(([id, flat]) => readLoggedDecision(id, flat)!);
        expect(within).to.include({ qty: 0.1, reduceOnly: false, budgetUsd: 1348, projectedNotionalUsd: 1100, reservedUsd: 0, mode: 'enforce', source: 'redis', allow: true });
        expect(within!.hash).to.include({ symbol: 'ETHUSDT', budget_usd: '1348', equity_usd: '100000', timestamp: String(Math.floor(nowMs / 1000)), position_status: 'ok' });
        expect(over).to.include({ allow: false, wouldBlock: true, enforced: true, notionalUsd: 500, detail: 'projected_over_budget' });
        expect(over!.policy).to.deep.equal({ staleAfterMs: 60000, violationWindowMs: 30000, maxClockSkewMs: 5000, forceShadow: false });
      }
    });
  });

  describe('HTTP client against a running worker', () => {
    const redis = useRedisServer();
    let admin: RedisClient;
    let service: WorkerServiceHandle | undefined;
    const TOKEN = 'python-client-token-0123456789';

    async function startService(extra: Record<string, string> = {}): Promise<void> {
      const config = workerConfig(redis.server, { P28_MODE: 'enforce', PORT: '0', BUDGET_COMPUTE_INTERVAL_SEC: '0.2', ...extra });
      service = await startWorkerService(config, { heatSource: { read: async () => ({ value: 0.65, source: 'live' }) }, processMetrics: false });
      await eventually(async () => (await admin.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')) === '1348', 10000, 50);
    }
    beforeEach(async () => {
      admin = await connectedClient(redis.server);
      await admin.flushall();
      await seedGuideScenario(admin, { timestampSec: Math.floor(Date.now() / 1000) });
      await seedGuideScenario(admin, { timestampSec: Math.floor(Date.now() / 1000), symbol: 'ETHUSDT', positionAmt: '0.01', entryPrice: '3000' });
    });
    afterEach(async () => {
      await service?.stop();
      service = undefined;
      admin.disconnect();
    });

    const url = () => `http://127.0.0.1:${service!.port}`;
    async function ask(address: string, args: string[], timeoutSec = 0.5, env: Record<string, string> = {}): Promise<Verdict> {
      const { stdout } = await run(python, ['-m', 'p28_budget_gate.http_client', ...args, '--url', address, '--timeout', String(timeoutSec)], {
        cwd: PYTHON_PACKAGE_DIR,
        timeout: 15000,
        env: { ...process.env, P28_API_TOKEN: '', ...env },
      });
      return JSON.parse(stdout) as Verdict;
    }

    it('blocks an add to the over-budget position and allows its close, the plan sized by --notional', async () => {
      await startService();
      const add = await ask(url(), ['BTCUSDT', '--plan-id', 'plan-add', '--side', 'BUY', '--qty', '0.01', '--notional', '1000']);
      expect(add).to.include({ block: true, reason: 'p28_budget_violation', fail_open: false });
      expect(add.decision).to.include({ detail: 'projected_over_budget', budgetUsd: 1348 });
      const close = await ask(url(), ['BTCUSDT', '--plan-id', 'plan-close', '--action', 'FULL_CLOSE_PROPOSED', '--side', 'SELL', '--qty', '0.5']);
      expect(close).to.include({ block: false, reason: 'reduce_only', fail_open: false });
      const open = await ask(url(), ['ETHUSDT', '--plan-id', 'plan-open', '--side', 'BUY', '--notional', '100']);
      expect(open).to.include({ block: false, reason: 'within_budget' });
      expect(open.decision).to.include({ reservedUsd: 0 });
    });

    it('keeps one connection alive for many decisions, and releases over DELETE /v1/reservations', async () => {
      await startService();
      let connections = 0;
      const sockets: Socket[] = [];
      const counter: Server = createServer((inbound) => {
        connections += 1;
        const outbound = new Socket();
        sockets.push(inbound, outbound);
        outbound.connect(service!.port, '127.0.0.1');
        inbound.pipe(outbound).pipe(inbound);
        inbound.on('error', () => outbound.destroy());
        outbound.on('error', () => inbound.destroy());
      });
      await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', resolve));
      try {
        const port = (counter.address() as { port: number }).port;
        const out = await py(
          [
            'from p28_budget_gate.http_client import P28BudgetClient',
            `c = P28BudgetClient('http://127.0.0.1:${port}', timeout_sec=2)`,
            "v = [c.check_portfolio_budget('ETHUSDT', 'ka-%d' % i, side='BUY', notional_usd=10) for i in range(5)]",
            "print(' '.join(x.reason for x in v), v[4].reserved_usd, c.release('ka-0', 'ETHUSDT'), c.release('ka-0', 'ETHUSDT'))",
          ].join('\n'),
        );
        expect(out).to.equal('within_budget within_budget within_budget within_budget within_budget 40 True False');
        expect(connections).to.equal(1);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => counter.close(() => resolve()));
      }
    });

    it('is loud on a 401: a logged error and a counted misconfiguration, then a fail-open verdict', async () => {
      await startService({ P28_API_TOKEN: TOKEN });
      const { stdout, stderr } = await run(python, ['-m', 'p28_budget_gate.http_client', 'BTCUSDT', '--side', 'BUY', '--notional', '1000', '--url', url()], {
        cwd: PYTHON_PACKAGE_DIR,
        timeout: 15000,
        env: { ...process.env, P28_API_TOKEN: 'wrong-token-0123456789abcdef' },
      });
      const verdict = JSON.parse(stdout) as Verdict;
      expect(verdict).to.include({ block: false, reason: 'client_http_401', fail_open: true });
      expect(verdict.misconfigured).to.deep.equal({ 'misconfigured{http_401}': 1 });
      expect(stderr).to.match(/ERROR p28_budget_gate\.http: P2\.8 worker answered 401.*P28_API_TOKEN/);
      expect(stderr).to.not.contain('wrong-token');
      const ok = await ask(url(), ['BTCUSDT', '--side', 'BUY', '--notional', '1000'], 0.5, { P28_API_TOKEN: TOKEN });
      expect(ok).to.include({ block: true, reason: 'p28_budget_violation' });
    });

    it('fails open with client_unreachable once the worker is stopped, and client_timeout when it never answers', async () => {
      const verdict = await ask(`http://127.0.0.1:${await freePort()}`, ['BTCUSDT', '--side', 'BUY', '--notional', '1000'], 0.5);
      expect(verdict).to.include({ block: false, reason: 'client_unreachable', fail_open: true });
      expect(verdict.elapsed_sec).to.be.below(0.5);
      const sockets: Socket[] = [];
      const silent: Server = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const port = (silent.address() as { port: number }).port;
        const slow = await ask(`http://127.0.0.1:${port}`, ['BTCUSDT', '--side', 'BUY', '--notional', '1000'], 0.3);
        expect(slow).to.include({ block: false, reason: 'client_timeout', fail_open: true });
        expect(slow.elapsed_sec).to.be.within(0.25, 1.3);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });
  });
});
