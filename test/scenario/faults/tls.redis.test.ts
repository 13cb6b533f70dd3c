import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type WorkerConfig } from '../../../lib/config';
import { createRedisClient, redisOptionsFromConfig, waitForReady, type RedisClient } from '../../../lib/redis/client';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { freePort } from '../../support/local-redis-server';
import { eventually } from '../../support/redis';
import { seedGuideScenario } from '../../support/seed';

const PASSWORD = 'tls-pw';

/** A private CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=p28-test-ca');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', 'localhost'], ['client', 'p28-worker']] as const) {
    openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

describe('TLS with a private CA and client certificates (tls-auth-clients yes)', function () {
  this.timeout(30000);
  let dir: string;
  let port: number;
  let server: ChildProcess;
  const clients: RedisClient[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p28-tls-'));
    makeCertificates(dir);
    port = await freePort();
    server = spawn(
      process.env.REDIS_SERVER_BIN ?? 'redis-server',
      ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', 'server.pem', '--tls-key-file', 'server.key',
        '--tls-ca-cert-file', 'ca.pem', '--tls-auth-clients', 'yes', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { cwd: dir, stdio: 'ignore' },
    );
    process.once('exit', () => server.kill('SIGKILL'));
  });
  after(() => {
    for (const c of clients) c.disconnect();
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (files: Record<string, string>): WorkerConfig =>
    loadConfig({
      REDIS_URL: `rediss://:${PASSWORD}@127.0.0.1:${port}`,
      LOG_LEVEL: 'silent',
      P28_INSTANCE_ID: 'tls-worker',
      ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(dir, f)])),
    });
  const connect = (c: WorkerConfig): RedisClient => {
    const client = createRedisClient(redisOptionsFromConfig(c, 'p28-worker'));
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };
  const mutual = { REDIS_TLS_CA_FILE: 'ca.pem', REDIS_TLS_CERT_FILE: 'client.pem', REDIS_TLS_KEY_FILE: 'client.key' };

  it('runs a worker cycle over mutual TLS with REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE', async () => {
    const client = connect(config(mutual));
    await eventually(() => client.status === 'ready', 10000, 50);
    await seedGuideScenario(client, { timestampSec: Math.floor(Date.now() / 1000) });
    const heat: HeatReader = { read: async () => ({ value: 0.65, source: 'live' }) };
    const report = await new BudgetWorker({ config: config(mutual), redis: client, heatSource: heat }).runOnce();
    expect([report.result, report.written]).to.deep.equal(['ok', ['BTCUSDT']]);
    expect(await client.hget('quantum:portfolio:budget:BTCUSDT', 'budget_usd')).to.equal('1348');
  });

  it('cannot connect without the client certificate, nor without the private CA', async () => {
    const noCert = connect(config({ REDIS_TLS_CA_FILE: 'ca.pem' }));
    const noCa = connect(config({ REDIS_TLS_CERT_FILE: 'client.pem', REDIS_TLS_KEY_FILE: 'client.key' }));
    const errors: string[] = [];
    noCa.on('error', (e: Error) => errors.push(e.message));
    await Promise.all([
      waitForReady(noCert, 3000).then(() => expect.fail('connected without a client certificate'), () => undefined),
      waitForReady(noCa, 3000).then(() => expect.fail('connected without the CA'), () => undefined),
    ]);
    expect(errors.join('\n')).to.match(/self[- ]signed|unable to verify|certificate/i);
  });
});
