import { Agent } from 'node:http';
import { createRedisClient, waitForReady } from '../lib/redis/client';
import type { LocalRedisServer } from '../dev/local-redis-server';
import { post, seedBook, startWorker } from './decisions-during-cycles';
import type { Row } from './report';
import { median, percentile } from './stats';

export interface SoakOptions {
  /** Seconds of load after the warm-up (default run: short; `--soak 3600` for the hour). */
  seconds: number;
  symbols: number;
  intervalSec: number;
  ratePerSec: number;
  /** Seconds before the first memory sample counts (JIT, caches and pools fill up). */
  warmupSec: number;
}

interface MemorySample {
  atSec: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** The heap of the thread that runs the cycle (`p28_cycle_heap_used_bytes`). */
  cycleHeapBytes: number;
}

/** One series of a Prometheus text exposition, or NaN. */
function series(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/**
 * How often memory is read: every 5 s in a long run, more often in a short one (every second in the
 * 120 s run of `npm run bench`), so that each quarter holds about 30 samples or more and its lowest
 * sample falls just after a collection. A quarter of six samples, taken every 5 s of a 120 s run,
 * could miss every trough of a heap that swings between 20 and 120 MiB.
 */
export function sampleEveryMs(seconds: number): number {
  return Math.round(Math.min(5, Math.max(1, seconds / 120)) * 1000);
}

/**
 * The worker under a steady load for a long time: a book of `symbols`, a cycle every
 * `intervalSec`, and `ratePerSec` HTTP decisions, in a worker process of its own. Memory is read
 * from the worker's own /metrics (`process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`)
 * every 1 to 5 s (`sampleEveryMs`). Targets: RSS grows by less than 10 % from the end of the warm-up to the end,
 * and each heap is flat: its floor (the lowest sample of the last quarter, what is left alive after
 * a collection) within 10 % of the first quarter's. A heap in use swings several times over between
 * collections, so the median of samples moves with where in the swing they fall; it is reported,
 * not judged.
 */
export async function runSoakBench(server: LocalRedisServer, o: SoakOptions, log: (s: string) => void): Promise<Row[]> {
  const seed = createRedisClient({ url: server.url, profile: 'worker', commandTimeoutMs: 60_000 });
  await waitForReady(seed, 5000);
  await seed.flushall();
  await seedBook(seed, o.symbols);
  // Keep the portfolio state fresh for the whole run.
  const refresh = setInterval(() => void seed.hset('quantum:state:portfolio', 'timestamp', String(Math.floor(Date.now() / 1000))).catch(() => undefined), 5000);
  const lines: string[] = [];
  const { child, port } = await startWorker(server, { symbols: o.symbols, intervalSec: o.intervalSec }, lines);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const samples: MemorySample[] = [];
  const latencies: number[] = [];
  let decisions = 0;
  let failedOpen = 0;
  let lost = 0;
  const failOpenReasons = new Map<string, number>();
  try {
    const started = performance.now();
    const totalSec = o.warmupSec + o.seconds;
    const sampler = setInterval(() => {
      void fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .then((text) => samples.push({ atSec: (performance.now() - started) / 1000, rssBytes: series(text, 'process_resident_memory_bytes'), heapUsedBytes: series(text, 'nodejs_heap_size_used_bytes'), cycleHeapBytes: series(text, 'p28_cycle_heap_used_bytes') }))
        .catch(() => undefined);
    }, sampleEveryMs(o.seconds));
    const gapMs = 1000 / o.ratePerSec;
    const pending = new Set<Promise<void>>();
    let lastLog = started;
    for (let i = 0; performance.now() - started < totalSec * 1000; i++) {
      const due = started + i * gapMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const body = JSON.stringify({ planId: `soak-${i}`, symbol: `S${(i * 7919) % o.symbols}USDT`, action: 'OPEN', side: 'BUY', qty: 1 });
      const p: Promise<void> = post(port, agent, body).then(
        (decision) => {
          decisions += 1;
          latencies.push(performance.now() - due);
          if (decision.failOpen) {
            failedOpen += 1;
            const why = `${decision.reason}${decision.detail ? `:${decision.detail}` : ''}`;
            failOpenReasons.set(why, (failOpenReasons.get(why) ?? 0) + 1);
          }
        },
        () => {
          lost += 1;
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
      if (performance.now() - lastLog > 60_000) {
        lastLog = performance.now();
        const last = samples.at(-1);
        log(`soak: ${((lastLog - started) / 1000).toFixed(0)} s, ${decisions} decisions, rss ${last ? (last.rssBytes / 2 ** 20).toFixed(0) : '?'} MiB, heap ${last ? (last.heapUsedBytes / 2 ** 20).toFixed(0) : '?'} MiB, cycle heap ${last ? (last.cycleHeapBytes / 2 ** 20).toFixed(0) : '?'} MiB`);
      }
      // Latency samples are bounded: keep a uniform sample of at most 200,000.
      if (latencies.length > 200_000) latencies.splice(0, 100_000);
    }
    await Promise.all(pending);
    clearInterval(sampler);
  } finally {
    clearInterval(refresh);
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    seed.disconnect();
  }
  const steady = samples.filter((s) => s.atSec >= o.warmupSec);
  const quarter = Math.max(1, Math.floor(steady.length / 4));
  /** Median of the first and of the last quarter of the steady samples, growth in %, and the range in MiB. */
  const drift = (of: (s: MemorySample) => number) => {
    const start = median(steady.slice(0, quarter).map(of));
    const end = median(steady.slice(-quarter).map(of));
    const mib = steady.map((s) => of(s) / 2 ** 20);
    // The lowest sample of a quarter is the heap just after a collection: what stays alive. A sample
    // the thread could not give (0: it was busy or gone) is no floor.
    const lowest = (part: MemorySample[]) => Math.min(...part.map(of).filter((v) => Number.isFinite(v) && v > 0));
    const floorGrowth = (lowest(steady.slice(-quarter)) / lowest(steady.slice(0, quarter)) - 1) * 100;
    return { start, end, growth: (end / start - 1) * 100, floorGrowth, range: `${Math.min(...mib).toFixed(0)}..${Math.max(...mib).toFixed(0)} MiB` };
  };
  const rss = drift((s) => s.rssBytes);
  const heap = drift((s) => s.heapUsedBytes);
  const cycleHeap = drift((s) => s.cycleHeapBytes);
  const [rssStart, rssEnd, rssGrowth] = [rss.start, rss.end, rss.growth];
  const [heapStart, heapEnd, heapGrowth] = [heap.start, heap.end, heap.growth];
  const cycles = lines.filter((l) => l.includes('"msg":"cycle"') && l.includes('"role":"leader"')).length;
  const failedCycles = lines.filter((l) => l.includes('cycle failed')).length;
  const scenario = `soak: ${o.symbols} symbols, ${o.intervalSec} s interval, ${o.ratePerSec} decisions/s for ${o.seconds} s after ${o.warmupSec} s warm-up (worker process)`;
  log(`${scenario}: rss ${(rssStart / 2 ** 20).toFixed(0)} -> ${(rssEnd / 2 ** 20).toFixed(0)} MiB (${rssGrowth.toFixed(1)} %), heap ${(heapStart / 2 ** 20).toFixed(0)} -> ${(heapEnd / 2 ** 20).toFixed(0)} MiB (${heapGrowth.toFixed(1)} %, samples ${heap.range}), cycle heap ${(cycleHeap.start / 2 ** 20).toFixed(0)} -> ${(cycleHeap.end / 2 ** 20).toFixed(0)} MiB (${cycleHeap.growth.toFixed(1)} %, samples ${cycleHeap.range}), ${decisions} decisions (${failedOpen} failed open: ${JSON.stringify(Object.fromEntries(failOpenReasons))}, ${lost} lost), ${cycles} cycles (${failedCycles} failed)`);
  return [
    { scenario, metric: 'RSS growth, first to last quarter (median)', unit: '%', value: rssGrowth, target: '< 10 %', met: rssGrowth < 10 },
    { scenario, metric: 'heap floor growth (lowest sample of the first and of the last quarter), main thread', unit: '%', value: heap.floorGrowth, target: '< 10 % (flat)', met: heap.floorGrowth < 10 },
    { scenario, metric: 'heap floor growth (lowest sample of the first and of the last quarter), cycle thread', unit: '%', value: cycleHeap.floorGrowth, target: '< 10 % (flat)', met: cycleHeap.floorGrowth < 10 },
    { scenario, metric: `heap used growth, main thread, first to last quarter (median of samples ${heap.range})`, unit: '%', value: heapGrowth },
    { scenario, metric: `heap used growth, cycle thread, first to last quarter (median of samples ${cycleHeap.range})`, unit: '%', value: cycleHeap.growth },
    { scenario, metric: 'decision latency p99', unit: 'ms', value: percentile(latencies, 0.99) },
    { scenario, metric: 'decisions failed open or lost', unit: 'decisions', value: failedOpen + lost },
    { scenario, metric: 'leader cycles (failed)', unit: 'cycles', value: cycles, baseline: failedCycles },
  ];
}
