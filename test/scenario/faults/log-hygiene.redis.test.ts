import { expect } from 'chai';
import { HeatGateStub } from '../../support/heat-gate-stub';
import { eventually, useRedisServer } from '../../support/redis';
import { runWorkerProcess, type WorkerProcess } from '../../support/worker-process';

describe('log hygiene of the worker process (real process)', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let stub: HeatGateStub;
  let worker: WorkerProcess | undefined;

  before(async () => {
    stub = await HeatGateStub.start();
  });
  after(async () => {
    await worker?.kill();
    await stub.close();
  });

  it("prints ioredis's own console warnings as JSON log lines, never as raw lines, and without the password", async () => {
    // A password the server does not require: ioredis warns about it on the console.
    const url = redis.server.url.replace('redis://', 'redis://:not-needed-s3cret@');
    worker = runWorkerProcess([], { REDIS_URL: url, HEAT_GATE_METRICS_URL: stub.url, PORT: '0', LOG_LEVEL: 'info', P28_INSTANCE_ID: 'hygiene', BUDGET_COMPUTE_INTERVAL_SEC: '0.5' });
    await eventually(() => worker!.stdout().includes('does not require a password'), 20000, 50);
    const raw = [...worker.stdout().split('\n'), ...worker.stderr().split('\n')].filter((l) => l.trim() !== '' && !l.startsWith('{'));
    expect(raw, raw.join('\n')).to.deep.equal([]);
    const warning = worker.logLines().find((l) => String(l.msg).includes('does not require a password'))!;
    expect(warning.source).to.equal('console');
    expect(worker.stdout() + worker.stderr()).to.not.contain('not-needed-s3cret');
  });
});
