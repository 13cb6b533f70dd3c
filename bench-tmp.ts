import { LocalRedisServer } from './test/support/local-redis-server';
import { runHttpBench } from './bench/http-bench';
import { table } from './bench/report';
(async () => { for (let i = 0; i < 3; i++) { const s = await LocalRedisServer.start(); try { console.log(table(await runHttpBench(s, { serialSamples: 5000, throughputOps: 20000, concurrency: 32 }, () => undefined))); } finally { await s.stop(); } } })();
