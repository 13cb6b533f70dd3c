import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig } from '../../../lib/config';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import { startWorkerService } from '../../../lib/worker/worker-service';
import type { RedisClient } from '../../../lib/redis/client';
import { captureLogs } from '../../support/log-capture';
import { connectedClient, eventually, useRedisServer } from '../../support/redis';

// Every URL-special character, so that a password cut at any of them would still show a piece.
const WRONG = 'Wr0ng/?#@:%ZZ[]!$&\'()*+,;= pw';
const heat: HeatReader = { read: async () => ({ value: 0.2, source: 'live' }) };

describe('a password with every special character, against a real server that refuses it', function () {
  this.timeout(30000);
  const redis = useRedisServer();
  let admin: RedisClient;

  before(async () => {
    admin = await connectedClient(redis.server);
    await admin.config('SET', 'requirepass', 'the-right-one');
  });
  // The server is private to this suite and stopped after it; no need to lift requirepass.
  after(() => admin.disconnect());

  const url = () => `redis://p28:${WRONG}@127.0.0.1:${redis.server.port}/0`;

  it('appears in no log line of the worker service', async () => {
    const { logger, lines } = captureLogs();
    const service = await startWorkerService(loadConfig({ REDIS_URL: url(), PORT: '0', LOG_LEVEL: 'silent' }), { logger, heatSource: heat, processMetrics: false });
    try {
      await eventually(() => lines.some((l) => /redis connection error/.test(l.msg)), 10000, 50);
    } finally {
      await service.stop();
    }
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(text).to.contain('p28:***@127.0.0.1');
    for (const piece of ['Wr0ng', encodeURIComponent(WRONG)]) expect(text).not.to.contain(piece);
  });

  it('appears nowhere in the output of p28-worker, which exits non-zero', () => {
    const root = join(__dirname, '..', '..', '..');
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli.ts'), 'mode'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', REDIS_URL: url() },
      encoding: 'utf8',
      timeout: 30000,
    });
    expect(run.status).to.not.equal(0);
    expect(run.stdout + run.stderr).to.contain('p28:***@127.0.0.1').and.not.contain('Wr0ng');
  });
});
