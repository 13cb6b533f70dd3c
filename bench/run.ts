import { LocalRedisServer } from '../test/support/local-redis-server';
import { runGateBench } from './gate-bench';
import { runHttpBench } from './http-bench';
import { runWorkerBench, runWorkerRssBench } from './worker-bench';
import { machine, table, writeJson, type Row } from './report';

/**
 * `npm run bench`: the gate against raw HGETALL, and a worker cycle against a raw pipeline that
 * writes the same hashes, each pair measured in the same run on the same private redis-server.
 * `--quick` runs smaller samples (a smoke test of the harness, not figures to quote).
 */
async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const started = Date.now();
  const log = (s: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${s}\n`);
  const server = await LocalRedisServer.start();
  log(`redis-server on port ${server.port}`);
  const rows: Row[] = [];
  try {
    rows.push(...(await runWorkerRssBench(server, quick ? { cycles: 50, symbols: 100 } : { cycles: 1000, symbols: 100 }, log)));
    rows.push(
      ...(await runGateBench(
        server,
        quick
          ? { serialSamples: 1000, throughputOps: 5000, reducingDecisions: 10000, pausedSeconds: 1 }
          : { serialSamples: 10000, throughputOps: 40000, reducingDecisions: 100000, pausedSeconds: 6 },
        log,
      )),
    );
    rows.push(
      ...(await runWorkerBench(
        server,
        quick
          ? { sizes: [100, 1000], cycles: () => 3 }
          : { sizes: [100, 1000, 10000], cycles: (n) => (n >= 10000 ? 5 : 15) },
        log,
      )),
    );
    rows.push(
      ...(await runHttpBench(
        server,
        quick ? { serialSamples: 500, throughputOps: 2000, concurrency: 32 } : { serialSamples: 5000, throughputOps: 20000, concurrency: 32 },
        log,
      )),
    );
  } finally {
    await server.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`\nmachine: ${JSON.stringify(machine())}\n`);
  console.log(table(rows));
  const path = writeJson(rows, { quick, seconds });
  console.log(`\n${rows.filter((r) => r.met === false).length} of ${rows.filter((r) => r.met !== undefined).length} targets missed; ${seconds.toFixed(0)} s`);
  console.log(`figures written to ${path}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
