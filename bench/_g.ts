import { LocalRedisServer } from '../test/support/local-redis-server';
import { runGateBench } from './gate-bench';
import { table } from './report';
(async () => {
  const server = await LocalRedisServer.start();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  try {
    console.log(table(await runGateBench(server, { serialSamples: 10000, throughputOps: 40000, reducingDecisions: 100000, pausedSeconds: 6 }, log)));
  } finally { await server.stop(); }
})();
