import { LocalRedisServer } from '../dev/local-redis-server';
import { runCacheBench } from './cache-bench';
import { runGateBench } from './gate-bench';
import { runDecisionLogBench } from './decision-log-bench';
import { runHttpBench } from './http-bench';
import { runLargeBookBench, runWorkerBench, runWorkerRssBench } from './worker-bench';
import { availablePlacements, withPlacement } from './placement';
import { machine, table, writeJson, type Row } from './report';

/**
 * `npm run bench`: the gate against raw HGETALL, and a worker cycle against raw ioredis doing the
 * same reads and writes (under both core placements), each pair measured in the same run on the same
 * private redis-server.
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
      ...(await runDecisionLogBench(
        server,
        quick ? { serialSamples: 1000, rounds: 1, replayDecisions: 5000, cpuDecisions: 5000 } : { serialSamples: 10000, rounds: 3, replayDecisions: 1000000, cpuDecisions: 100000 },
        log,
      )),
    );
    rows.push(...(await runCacheBench(server, quick ? { hitSamples: 1000, invalidations: 200 } : { hitSamples: 10000, invalidations: 2000 }, log)));
    // The worker under each core placement, each figure against its baseline under the same one.
    for (const placement of availablePlacements()) {
      const at = { placement: placement.name, probeCpus: placement.redisCore === undefined ? undefined : String(placement.redisCore) };
      const options = quick
        ? { sizes: [100, 1000], cycles: () => 3, probe: { symbols: 1000, cycles: 3 }, ...at }
        : { sizes: [1000, 10000], cycles: (n: number) => (n >= 10000 ? 9 : 21), probe: { symbols: 10000, cycles: 6 }, ...at };
      rows.push(...(await withPlacement(placement, server.pid, () => runWorkerBench(server, options, log))));
    }
    if (!quick) rows.push(...(await runLargeBookBench(server, { symbols: 50000, cycles: 2 }, log)));
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
