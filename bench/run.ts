import { LocalRedisServer } from '../dev/local-redis-server';
import { runCacheBench } from './cache-bench';
import { runGateBench } from './gate-bench';
import { runDecisionLogBench } from './decision-log-bench';
import { runHttpBench } from './http-bench';
import { runPythonBench } from './python-bench';
import { runReservationsBench } from './reservations-bench';
import { runDecisionsDuringCyclesBench } from './decisions-during-cycles';
import { runSoakBench } from './soak';
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
  // `--only decisions` (or `soak`, `gate`, `decision-log`) runs that part alone.
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
  const soakAt = process.argv.indexOf('--soak');
  const started = Date.now();
  const log = (s: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${s}\n`);
  const server = await LocalRedisServer.start();
  log(`redis-server on port ${server.port}`);
  const rows: Row[] = [];
  try {
    // The two scenarios that run a worker process for minutes: part of a full run, and of a quick
    // one only when asked for (`--only decisions`, `--soak <seconds>`).
    if (only === 'decisions' || (only === undefined && soakAt < 0 && !quick)) {
      rows.push(
        ...(await runDecisionsDuringCyclesBench(
          server,
          quick ? { symbols: 2000, ratePerSec: 200, seconds: 10, runs: 1, intervalSec: 0.5 } : { symbols: 20000, ratePerSec: 200, seconds: 30, runs: 3, intervalSec: 1, inProcessRuns: 1 },
          log,
        )),
      );
    }
    if ((only === undefined && !quick) || only === 'soak' || soakAt >= 0) {
      // `--soak <seconds>`: the long run (e.g. 3600); default a short one.
      const seconds = soakAt >= 0 ? Number(process.argv[soakAt + 1]) : quick ? 30 : 120;
      if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('--soak takes a number of seconds, e.g. --soak 3600');
      rows.push(...(await runSoakBench(server, { seconds, symbols: 2000, intervalSec: 1, ratePerSec: 500, warmupSec: quick ? 10 : 30 }, log)));
    }
    // `--only gate`: the Node and Python gates against their baselines; `--only decision-log`: the log's cost, replay and readiness.
    const gateOptions = quick
      ? { serialSamples: 1000, throughputOps: 5000, reducingDecisions: 10000, pausedSeconds: 1 }
      : { serialSamples: 10000, throughputOps: 40000, reducingDecisions: 100000, pausedSeconds: 6 };
    const pythonOptions = quick ? { samples: 500, pacedRounds: 2, pacedPhaseSec: 0.5 } : { samples: 5000, pacedRounds: 10, pacedPhaseSec: 1.5 };
    const reservationOptions = quick ? { liveCounts: [300], samples: 100 } : { liveCounts: [50, 300, 1000, 3000], samples: 300 };
    const logOptions = quick
      ? { serialSamples: 1000, rounds: 1, pacedRounds: 2, replayDecisions: 5000, cpuDecisions: 5000 }
      : { serialSamples: 10000, rounds: 3, pacedRounds: 15, replayDecisions: 1000000, cpuDecisions: 100000 };
    if (only === 'gate') {
      rows.push(...(await runGateBench(server, gateOptions, log)));
      rows.push(...(await runReservationsBench(server, reservationOptions, log)));
      rows.push(...(await runPythonBench(server, pythonOptions, log)));
    }
    if (only === 'decision-log') rows.push(...(await runDecisionLogBench(server, logOptions, log)));
    if (only !== undefined || soakAt >= 0) return finish(rows, started, quick);
    rows.push(...(await runWorkerRssBench(server, quick ? { cycles: 50, symbols: 100 } : { cycles: 1000, symbols: 100 }, log)));
    rows.push(...(await runGateBench(server, gateOptions, log)));
    rows.push(...(await runReservationsBench(server, reservationOptions, log)));
    rows.push(...(await runPythonBench(server, pythonOptions, log)));
    rows.push(...(await runDecisionLogBench(server, logOptions, log)));
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
  finish(rows, started, quick);
}

function finish(rows: Row[], started: number, quick: boolean): void {
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
