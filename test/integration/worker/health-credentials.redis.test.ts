import { expect } from 'chai';
import { loadConfig } from '../../../lib/config';
import { startWorkerService, type WorkerServiceHandle } from '../../../lib/worker/worker-service';
import { LocalRedisServer } from '../../support/local-redis-server';
import { connectedClient, eventually } from '../../support/redis';
import { captureLogs } from '../../support/log-capture';

describe('GET /health names refused credentials (real redis-server with requirepass)', function () {
  this.timeout(30000);
  let server: LocalRedisServer;
  let service: WorkerServiceHandle | undefined;

  before(async () => {
    server = await LocalRedisServer.start();
    const admin = await connectedClient(server);
    await admin.config('SET', 'requirepass', 'right-password');
    admin.disconnect();
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
  });
  after(() => server.stop());

  for (const [cause, url] of [
    ['WRONGPASS', () => `redis://:wrong-secret@127.0.0.1:${server.port}`],
    ['NOAUTH', () => `redis://127.0.0.1:${server.port}`],
  ] as const) {
    it(`logs ${cause} once at start and answers 503 unhealthy with it and REDIS_URL in the reason, never the password`, async () => {
      const { logger, lines } = captureLogs();
      service = await startWorkerService(loadConfig({ REDIS_URL: url(), PORT: '0', HEAT_GATE_METRICS_URL: 'http://127.0.0.1:1/metrics' }), { processMetrics: false, logger });
      // The start says the cause once, plainly, before the cycles fail with a generic "not connected".
      expect(lines.map((l) => l.msg).filter((m) => String(m).includes(`(${cause}`))).to.have.length(1);
      expect(JSON.stringify(lines)).not.to.contain('wrong-secret');
      let body: { status?: string; reason?: string } = {};
      let text = '';
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${service!.port}/health`);
        text = await res.text();
        body = JSON.parse(text) as typeof body;
        return res.status === 503 && body.reason?.includes(cause) === true;
      }, 15000, 100);
      expect(body.status).to.equal('unhealthy');
      expect(body.reason).to.equal(`redis refuses the credentials (${cause}): check the user and password in REDIS_URL`);
      expect(text).not.to.contain('wrong-secret');
    });
  }
});
