import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { BudgetGate } from '../../../plugin/budget-gate';
import { PermitPipeline } from '../../../plugin/permit-pipeline';
import type { RedisClient } from '../../../lib/redis/client';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { freePort } from '../../support/local-redis-server';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';
import { seedGuideScenario, workerConfig } from '../../support/seed';

const DASHBOARD = join(__dirname, '..', '..', '..', 'deploy', 'grafana', 'p28-dashboard.json');

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
  datasource?: { uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string }> };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

/** Grafana's own variables, replaced the way Grafana would before a query reaches Prometheus. */
function asPrometheusQuery(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m');
}

describe('deploy/grafana/p28-dashboard.json', () => {
  it('is an importable dashboard: uid, title, schema version, a Prometheus datasource variable, unique panel ids', () => {
    expect(dashboard.uid).to.match(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.title).to.be.a('string').and.not.equal('');
    expect(dashboard.schemaVersion).to.be.a('number');
    expect(dashboard.templating.list).to.deep.include({ ...dashboard.templating.list.find((v) => v.name === 'datasource')!, type: 'datasource', query: 'prometheus' });
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const panel of queryPanels) {
      expect(panel.datasource?.uid, panel.title).to.equal('${datasource}');
      expect(panel.targets, panel.title).to.have.length.greaterThan(0);
    }
  });

  it('has the panels an operator needs', () => {
    const titles = queryPanels.map((p) => p.title);
    for (const title of ['Budget by symbol', 'Stress by symbol', 'Symbols over budget', 'Decisions by reason', 'Fail-opens by reason', 'Breaker state', 'Cycle duration', 'Budget age', 'Stale inputs', 'Mode']) {
      expect(titles).to.include(title);
    }
  });

  describe('every panel query against a real Prometheus scraping a worker and a gate host', function () {
    this.timeout(90000);
    const redis = useRedisServer();
    let client: RedisClient;
    let gateClient: RedisClient;
    let service: WorkerServiceHandle;
    let gate: BudgetGate;
    let gateHost: Server;
    let prometheus: ChildProcess | undefined;
    let promPort: number;
    let dir: string;
    let traffic: NodeJS.Timeout | undefined;

    before(async function () {
      if (spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status !== 0) {
        if (process.env.CI) throw new Error('prometheus is required in CI (apt-get install prometheus)');
        this.skip();
      }
      client = await connectedClient(redis.server);
      await client.flushall();
      const nowSec = Math.floor(Date.now() / 1000);
      await seedGuideScenario(client, { timestampSec: nowSec });
      await seedGuideScenario(client, { timestampSec: nowSec, symbol: 'ETHUSDT', positionAmt: '0.01', entryPrice: '3000' });

      const config = workerConfig(redis.server, { P28_MODE: 'enforce', PORT: '0', BUDGET_COMPUTE_INTERVAL_SEC: '0.5' });
      service = await startWorkerService(config, { heatSource: { read: async () => ({ value: 0.65, source: 'live' }) } });
      await eventually(async () => (await client.exists('quantum:portfolio:budget:BTCUSDT')) === 1, 10000, 50);

      // The gate host: a Node Governor's process, reduced to its gate, its pipeline and /metrics.
      gateClient = await connectedClient(redis.server, 'gate');
      const registry = new Registry();
      gate = new BudgetGate({ redis: gateClient, registry });
      const pipeline = new PermitPipeline([gate], { registry });
      gateHost = createServer((_req, res) => {
        registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text), () => res.writeHead(500).end());
      });
      await new Promise<void>((resolve) => gateHost.listen(0, '127.0.0.1', resolve));
      const plans = [
        { planId: 'add', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.01 },
        { planId: 'small', symbol: 'ETHUSDT', action: 'OPEN', side: 'BUY', qty: 0.01 },
        { planId: 'unknown', symbol: 'XRPUSDT', action: 'OPEN', side: 'BUY', qty: 1 },
      ] as const;
      const drive = () => {
        for (const plan of plans) void pipeline.evaluate(plan);
        traffic = setTimeout(drive, 100);
      };
      drive();

      dir = mkdtempSync(join(tmpdir(), 'p28-prometheus-'));
      promPort = await freePort();
      const targets = (port: number) => [`127.0.0.1:${port}`];
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global:',
          '  scrape_interval: 1s',
          '  evaluation_interval: 1s',
          'scrape_configs:',
          '  - job_name: p28-worker',
          `    static_configs: [{ targets: ${JSON.stringify(targets(service.port))} }]`,
          '  - job_name: p28-gate-host',
          `    static_configs: [{ targets: ${JSON.stringify(targets((gateHost.address() as AddressInfo).port))} }]`,
          '',
        ].join('\n'),
      );
      prometheus = spawn(
        'prometheus',
        [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
        { stdio: 'ignore' },
      );
      await eventually(async () => (await fetch(`http://127.0.0.1:${promPort}/-/ready`).catch(() => undefined))?.status === 200, 30000, 200);
      // Enough scrapes of both targets for rate() over a minute to have two points and more.
      await eventually(async () => {
        const result = await instant('min(count_over_time(up[1m]))');
        return Number(result[0]?.value[1] ?? 0) >= 4;
      }, 30000, 250);
    });

    after(async () => {
      clearTimeout(traffic);
      if (prometheus && prometheus.exitCode === null) {
        const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
        prometheus.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
      }
      await service?.stop();
      await gate?.close();
      gateClient?.disconnect();
      client?.disconnect();
      if (gateHost) await new Promise<void>((resolve) => gateHost.close(() => resolve()));
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function instant(query: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`${query}: ${body.error ?? res.status}`);
      return body.data!.result;
    }

    it('scrapes both the worker and the gate host', async () => {
      const up = await instant('up');
      expect(up.map((r) => [r.metric.job, r.value[1]]).sort()).to.deep.equal([
        ['p28-gate-host', '1'],
        ['p28-worker', '1'],
      ]);
    });

    it('parses every panel query and gets data back for each', async () => {
      const empty: string[] = [];
      for (const panel of queryPanels) {
        for (const target of panel.targets ?? []) {
          const result = await instant(asPrometheusQuery(target.expr));
          if (result.length === 0) empty.push(`${panel.title} / ${target.refId}: ${target.expr}`);
        }
      }
      expect(empty).to.deep.equal([]);
    });

    it('shows the over-budget symbol, the block and the fail-open the traffic produced', async () => {
      const over = await instant(asPrometheusQuery(queryPanels.find((p) => p.title === 'Over-budget symbols')!.targets![0]!.expr));
      expect(over.map((r) => r.metric.symbol)).to.deep.equal(['BTCUSDT']);
      const reasons = await instant(asPrometheusQuery(queryPanels.find((p) => p.title === 'Decisions by reason')!.targets![0]!.expr));
      const active = reasons.filter((r) => Number(r.value[1]) > 0).map((r) => r.metric.reason);
      expect(active).to.include.members(['p28_budget_violation', 'within_budget', 'no_budget_data']);
      const failOpens = await instant(asPrometheusQuery(queryPanels.find((p) => p.title === 'Fail-opens by reason')!.targets![0]!.expr));
      expect(failOpens.filter((r) => Number(r.value[1]) > 0).map((r) => r.metric.reason)).to.deep.equal(['no_budget_data']);
      const mode = await instant(queryPanels.find((p) => p.title === 'Mode')!.targets![0]!.expr);
      expect(mode[0]!.value[1]).to.equal('1');
    });
  });
});
