import { expect } from 'chai';
import { BudgetWorker } from '../../../lib/worker/budget-worker';
import type { HeatReader } from '../../../lib/worker/sources/heat-source';
import type { RedisClient } from '../../../lib/redis/client';
import { connectedClient, useRedisServer } from '../../support/redis';
import { seedSymbols, workerConfig } from '../../support/seed';

const PER_ROUND = 1000;
const ROUNDS = 5;

/** How many series carry a `symbol` label, and which symbols they name. */
async function symbolSeries(worker: BudgetWorker): Promise<{ count: number; symbols: Set<string> }> {
  const symbols = new Set<string>();
  let count = 0;
  for (const metric of await worker.metrics.registry.getMetricsAsJSON()) {
    for (const value of metric.values) {
      const symbol = value.labels.symbol;
      if (symbol === undefined) continue;
      count += 1;
      symbols.add(String(symbol));
    }
  }
  return { count, symbols };
}

describe('symbol churn', function () {
  this.timeout(60000);
  const redis = useRedisServer();
  let client: RedisClient;

  before(async () => {
    client = await connectedClient(redis.server);
  });
  after(() => client.disconnect());

  it(`keeps per-symbol series to the current universe through ${ROUNDS} rounds of ${PER_ROUND} symbols created and deleted`, async () => {
    await client.flushall();
    const heat: HeatReader = { read: async () => ({ value: 0.2, source: 'live' }) };
    const worker = new BudgetWorker({ config: workerConfig(redis.server), redis: client, heatSource: heat });
    let perRound = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await client.hset('quantum:state:portfolio', { equity_usd: '100000', drawdown: '0', timestamp: String(Math.floor(Date.now() / 1000)) });
      const symbols = await seedSymbols(client, PER_ROUND, round * PER_ROUND);
      const report = await worker.runOnce();
      expect(report.written).to.have.length(PER_ROUND);
      const series = await symbolSeries(worker);
      expect([...series.symbols].sort()).to.deep.equal([...symbols].sort());
      if (round === 0) perRound = series.count;
      // Same universe size each round, so the same number of series: none left from earlier rounds.
      expect(series.count, `series after round ${round + 1}`).to.equal(perRound);
      await Promise.all(symbols.flatMap((s) => [client.del(`quantum:state:positions:${s}`), client.del(`quantum:state:market:${s}`)]));
    }
    expect(perRound).to.be.at.most(5 * PER_ROUND);
  });
});
