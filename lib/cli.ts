#!/usr/bin/env node
import { Argument, Command } from 'commander';
import { MODES, type Mode } from '../types/mode';
import { ConfigError, loadConfig, type WorkerConfig } from './config';
import { RedisKeys } from './redis/keys';
import { createLogger } from './logger';
import { parseModeOverride } from './worker/mode-switch';
import { createRedisClient, redactUrl, redisOptionsFromConfig, waitForReady, type RedisClient } from './redis/client';
import { startWorkerService } from './worker/worker-service';

/** Exit codes: 0 clean stop, 1 run-time failure, 2 bad configuration or usage. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, config: 2 });

function configOrExit(): WorkerConfig | undefined {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = EXIT.config;
    return undefined;
  }
}

/** Runs the worker until SIGTERM or SIGINT, then shuts down gracefully and exits 0. */
async function runWorker(): Promise<void> {
  const config = configOrExit();
  if (!config) return;
  const logger = createLogger(config.logLevel);
  let service: Awaited<ReturnType<typeof startWorkerService>>;
  try {
    service = await startWorkerService(config, { logger });
  } catch (error) {
    logger.fatal({ err: error }, 'could not start');
    process.exit(EXIT.failure);
  }
  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutdown requested');
    // A second signal while shutting down ends the process at once.
    process.once(signal, () => process.exit(EXIT.failure));
    service.stop().then(
      () => process.exit(EXIT.ok),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(EXIT.failure);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

async function connect(config: WorkerConfig): Promise<RedisClient> {
  const client = createRedisClient(redisOptionsFromConfig(config, 'p28-worker:cli'));
  client.on('error', () => undefined);
  try {
    await waitForReady(client, 5000);
  } catch (error) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${redactUrl(config.redisUrl)}: ${(error as Error).message}`, { cause: error });
  }
  return client;
}

/** Shows, sets or clears the run-time mode override. */
async function modeCommand(mode: Mode | undefined, options: { clear?: boolean }): Promise<void> {
  const config = configOrExit();
  if (!config) return;
  if (mode && options.clear) {
    process.stderr.write('give a mode or --clear, not both\n');
    process.exitCode = EXIT.config;
    return;
  }
  const keys = new RedisKeys(config.keyPrefix);
  let client: RedisClient;
  try {
    client = await connect(config);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.failure;
    return;
  }
  try {
    if (mode) {
      await client.set(keys.modeOverride, mode);
      process.stdout.write(
        `override set: ${keys.modeOverride} = ${mode}; every worker applies it within one cycle (${config.computeIntervalSec} s).\n` +
          'It lasts until it is cleared (p28-worker mode --clear) or until a worker process starts: a starting worker clears it and runs on its P28_MODE.\n',
      );
    } else if (options.clear) {
      await client.del(keys.modeOverride);
      process.stdout.write(`override cleared: the mode follows P28_MODE of each worker from its next cycle (here P28_MODE=${config.mode})\n`);
    } else {
      const [override, tail] = await Promise.all([
        client.get(keys.modeOverride),
        client.xrevrange(keys.modeAuditStream, '+', '-', 'COUNT', 1),
      ]);
      const parsed = override === null ? undefined : parseModeOverride(override);
      if (parsed) process.stdout.write(`mode: ${parsed} (source: override)\n`);
      else process.stdout.write(`mode: ${config.mode} (source: env, P28_MODE as configured here)\n`);
      if (override === null) process.stdout.write(`override: none (${keys.modeOverride} is not set); mode = P28_MODE = ${config.mode}\n`);
      else if (!parsed) process.stdout.write(`override: ${JSON.stringify(override)} is invalid and ignored; mode = P28_MODE = ${config.mode}\n`);
      else process.stdout.write(`override: ${parsed} (${keys.modeOverride}); mode = ${parsed}\n`);
      const entry = tail[0];
      if (entry) {
        const fields = Object.fromEntries(entry[1].flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1] ?? '']] : [])));
        const at = Number(fields.timestamp) > 0 ? new Date(Number(fields.timestamp) * 1000).toISOString() : fields.timestamp;
        if (fields.event === 'cleared_at_start') process.stdout.write(`last change: override ${fields.from} cleared at start by ${fields.instance} at ${at}; mode -> ${fields.to} (env)\n`);
        else process.stdout.write(`last switch: ${fields.from} -> ${fields.to} (${fields.source}) by ${fields.instance} at ${at}\n`);
      }
    }
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.failure;
  } finally {
    client.disconnect();
  }
}

/** The `p28-worker` command line. */
export function buildCli(): Command {
  const program = new Command('p28-worker')
    .description('P2.8 Portfolio Risk Governor budget worker: computes per-symbol position budgets and writes them to Redis. Configured by environment variables.')
    .action(runWorker);
  program
    .command('mode')
    .description('show the effective mode and its source, or set the run-time override (shadow|enforce) or --clear it; workers apply it within one cycle, and a starting worker clears it')
    .addArgument(new Argument('[mode]', 'the mode to switch to').choices(MODES))
    .option('--clear', 'delete the override, so every worker follows its P28_MODE')
    .action(modeCommand);
  return program;
}

if (require.main === module) {
  buildCli()
    .parseAsync(process.argv)
    .catch((error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(EXIT.failure);
    });
}
