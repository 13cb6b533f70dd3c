import { Command, InvalidArgumentError } from 'commander';
import { RedisKeys } from '../lib/redis/keys';
import { ConfigError, loadConfig } from '../lib/config';
import { createRedisClient, waitForReady, redactUrl, type RedisClient } from '../lib/redis/client';
import { parseRedisUrl } from '../lib/redis/redis-url';
import { HeatGateStub } from '../dev/heat-gate-stub';
import { DEFAULT_HEAT_PORT } from './heat-stand-in';

/**
 * The inputs of a local try, written the way the live system's publishers write them today:
 * positions as P3.3 (`position_state_brain`) does, market state as `market_state_publisher` does,
 * and the portfolio as `portfolio_state_publisher` does, each with the TTL its publisher gives it.
 */
export const LOCAL_PORTFOLIO = Object.freeze({
  equityUsd: 100000,
  positions: [
    { symbol: 'BTCUSDT', positionAmt: 0.5, entryPrice: 100000, markPrice: 100000 },
    { symbol: 'ETHUSDT', positionAmt: 0.2, entryPrice: 3000, markPrice: 3000 },
  ],
  /** Tracked by the market engine, not held. */
  tracked: ['SOLUSDT'],
  /** A robust EWMA of 1-minute returns, as the publisher's sigma: about 0.4 % a minute. */
  sigma: 0.004,
});

export const LOCAL_FEEDER_DEFAULTS = Object.freeze({
  intervalSec: 5,
  /** The publishers' TTLs: P3.3's on-demand snapshots, the portfolio publisher's state. */
  positionTtlSec: 300,
  portfolioTtlSec: 120,
  /** The market publisher keeps 10 publish intervals. */
  marketTtlIntervals: 10,
  /** The marker in the portfolio hash that tells the feeder's own state from a real publisher's. */
  source: 'p28-local-feeder',
});

export interface LocalFeederOptions {
  redis: RedisClient;
  /** Where to write: the worker's key prefix and input families (default `quantum` and today's live families). */
  keys?: RedisKeys;
  intervalSec?: number;
  /** Epoch ms (default `Date.now`). */
  now?: () => number;
}

/** The feeder refuses to overwrite what another writer keeps fresh, or to write to a remote Redis. */
export class LocalFeederRefused extends Error {
  override readonly name = 'LocalFeederRefused';
  readonly code = 'P28_LOCAL_FEEDER_REFUSED';
}

/**
 * Keeps a local try alive: rewrites the portfolio state, two positions and three market states
 * every `intervalSec`, so the portfolio is never older than `STALE_SEC` and the worker keeps writing
 * budgets for as long as the feeder runs. It writes the live key families only.
 */
export class LocalFeeder {
  private readonly keys: RedisKeys;
  private readonly intervalSec: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  writes = 0;

  constructor(private readonly options: LocalFeederOptions) {
    this.keys = options.keys ?? new RedisKeys();
    this.intervalSec = options.intervalSec ?? LOCAL_FEEDER_DEFAULTS.intervalSec;
    this.now = options.now ?? Date.now;
  }

  /** Throws `LocalFeederRefused` when a fresh portfolio state written by someone else is present. */
  async checkNoOtherWriter(): Promise<void> {
    const current = await this.options.redis.hgetall(this.keys.portfolioState);
    const ageSec = this.now() / 1000 - Number(current.timestamp);
    if (current.source !== undefined && current.source !== LOCAL_FEEDER_DEFAULTS.source && ageSec < 300) {
      throw new LocalFeederRefused(`${this.keys.portfolioState} is kept fresh by ${current.source}; the local feeder does not overwrite a live portfolio state`);
    }
  }

  /** Writes every input once, each key with its TTL, in one MULTI. */
  async writeOnce(): Promise<void> {
    const nowSec = Math.floor(this.now() / 1000);
    const { redis } = this.options;
    const tx = redis.multi();
    let notional = 0;
    for (const p of LOCAL_PORTFOLIO.positions) {
      notional += Math.abs(p.positionAmt) * p.markPrice;
      const key = this.keys.positions.key(p.symbol);
      tx.hset(key, {
        symbol: p.symbol,
        position_amt: String(p.positionAmt),
        side: p.positionAmt > 0 ? 'LONG' : p.positionAmt < 0 ? 'SHORT' : 'FLAT',
        quantity: String(Math.abs(p.positionAmt)),
        entry_price: String(p.entryPrice),
        mark_price: String(p.markPrice),
        ts_epoch: String(nowSec),
        source: LOCAL_FEEDER_DEFAULTS.source,
      });
      tx.expire(key, LOCAL_FEEDER_DEFAULTS.positionTtlSec);
    }
    for (const symbol of [...LOCAL_PORTFOLIO.positions.map((p) => p.symbol), ...LOCAL_PORTFOLIO.tracked]) {
      const key = this.keys.marketStates.key(symbol);
      tx.hset(key, {
        sigma: LOCAL_PORTFOLIO.sigma.toFixed(8),
        mu: (0).toFixed(8),
        ts: (0).toFixed(6),
        p_trend: '0.333333',
        p_mr: '0.333333',
        p_chop: '0.333334',
        ts_timestamp: String(nowSec),
      });
      tx.expire(key, this.intervalSec * LOCAL_FEEDER_DEFAULTS.marketTtlIntervals);
    }
    tx.hset(this.keys.portfolioState, {
      ts_utc: String(nowSec),
      timestamp: String(nowSec),
      equity_usd: LOCAL_PORTFOLIO.equityUsd.toFixed(2),
      positions_count: String(LOCAL_PORTFOLIO.positions.length),
      positions_notional_usd: notional.toFixed(2),
      drawdown: '0.0',
      source: LOCAL_FEEDER_DEFAULTS.source,
    });
    tx.expire(this.keys.portfolioState, LOCAL_FEEDER_DEFAULTS.portfolioTtlSec);
    const replies = await tx.exec();
    const failed = replies?.find(([error]) => error !== null)?.[0];
    if (replies === null || failed) throw failed ?? new Error('the MULTI was discarded');
    this.writes += 1;
  }

  /** Writes now and then every `intervalSec` until `stop()`; a failed write is reported and retried next time. */
  start(onError: (error: Error) => void): void {
    const tick = (): void => void this.writeOnce().catch(onError);
    tick();
    this.timer = setInterval(tick, this.intervalSec * 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

function positiveSeconds(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > 25) throw new InvalidArgumentError('expected seconds in (0,25], below STALE_SEC');
  return value;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** `npm run local`: the feeder and the heat stand-in, until Ctrl-C. */
export function localFeederCli(): Command {
  return new Command('local')
    .description('keep a local try of the worker alive: write portfolio, positions and market state as the live publishers do, and serve heat, until Ctrl-C')
    .option('--interval <sec>', 'seconds between writes', positiveSeconds, LOCAL_FEEDER_DEFAULTS.intervalSec)
    .option('--heat <value>', 'the heat the stand-in serves, in [0,1]', '0.65')
    .option('--heat-port <port>', 'port of the heat stand-in on 127.0.0.1 (0: none)', String(DEFAULT_HEAT_PORT))
    .exitOverride()
    .action(async (options: { interval: number; heat: string; heatPort: string }) => {
      // The worker's own settings (REDIS_URL, P28_KEY_PREFIX, the input families), so the feeder writes where it reads.
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig(process.env);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write(`${error.message}\n`);
        process.exit(2);
      }
      const url = config.redisUrl;
      const keys = new RedisKeys(config.keyPrefix, config.inputFamilies);
      const host = parseRedisUrl(url).host;
      if (!LOOPBACK.has(host)) {
        process.stderr.write(`refusing to write test data to ${redactUrl(url)}: the local feeder only writes to a Redis on this machine (127.0.0.1)\n`);
        process.exit(2);
      }
      const redis = createRedisClient({ url, profile: 'worker', connectionName: 'p28-local-feeder' });
      redis.on('error', () => undefined);
      try {
        await waitForReady(redis, 3000);
      } catch {
        process.stderr.write(`cannot reach Redis at ${redactUrl(url)}; start one (redis-server) or set REDIS_URL\n`);
        redis.disconnect();
        process.exit(1);
      }
      const feeder = new LocalFeeder({ redis, keys, intervalSec: options.interval });
      try {
        await feeder.checkNoOtherWriter();
      } catch (error) {
        process.stderr.write(`${(error as Error).message}\n`);
        redis.disconnect();
        process.exit(2);
      }
      let heat: HeatGateStub | undefined;
      if (Number(options.heatPort) > 0) {
        try {
          heat = await HeatGateStub.start(Number(options.heatPort));
          heat.serveHeat(options.heat);
        } catch {
          process.stderr.write(`port ${options.heatPort} is taken (a P2.6 heat gate or stand-in already runs?); serving no heat (use --heat-port)\n`);
        }
      }
      let lastError = '';
      feeder.start((error) => {
        if (error.message !== lastError) process.stderr.write(`write failed: ${error.message}\n`);
        lastError = error.message;
      });
      process.stdout.write(
        [
          `local feeder: every ${options.interval} s into ${redactUrl(url)}:`,
          `  ${keys.portfolioState}  equity_usd ${LOCAL_PORTFOLIO.equityUsd}, positions_count, positions_notional_usd, timestamp`,
          ...LOCAL_PORTFOLIO.positions.map((p) => `  ${keys.positions.key(p.symbol)}  position_amt ${p.positionAmt} @ ${p.markPrice}, ts_epoch`),
          `  ${keys.marketStates.keyPrefix}<SYMBOL>  sigma ${LOCAL_PORTFOLIO.sigma} for ${[...LOCAL_PORTFOLIO.positions.map((p) => p.symbol), ...LOCAL_PORTFOLIO.tracked].join(', ')}`,
          heat ? `  heat stand-in                 p26_heat_value ${options.heat} at ${heat.url}` : '  heat stand-in                 none',
          'Ctrl-C stops it; the keys then expire by their TTLs.',
          '',
        ].join('\n'),
      );
      const stop = (): void => {
        feeder.stop();
        void Promise.all([heat?.close(), redis.quit().catch(() => redis.disconnect())]).then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

if (require.main === module) {
  localFeederCli()
    .parseAsync(process.argv)
    .catch((error: unknown) => process.exit((error as { exitCode?: number }).exitCode === 0 ? 0 : 2));
}
