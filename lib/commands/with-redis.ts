import { ConfigError, loadConfig, type WorkerConfig } from '../config';
import { createRedisClient, redactUrl, redisOptionsFromConfig, waitForReady, type RedisClient } from '../redis/client';
import { connectionProblem, describeConnectionProblem, trackConnectionProblems } from '../redis/connection-problem';
import { EXIT } from './exit-codes';

/** The configuration from the environment; on a bad one, its message on stderr, exit code 2 and undefined. */
export function configOrExit(): WorkerConfig | undefined {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = EXIT.config;
    return undefined;
  }
}

/** How long an operator command waits for Redis before it gives up with exit code 1. */
const CLI_CONNECT_TIMEOUT_MS = 3000;

async function connect(config: WorkerConfig, profile: 'worker' | 'gate' = 'worker'): Promise<RedisClient> {
  const client = createRedisClient({ ...redisOptionsFromConfig(config, 'p28-worker:cli'), profile });
  client.on('error', () => undefined);
  trackConnectionProblems(client);
  try {
    await waitForReady(client, CLI_CONNECT_TIMEOUT_MS);
  } catch (error) {
    const problem = connectionProblem(client);
    client.disconnect();
    throw new Error(describeConnectionProblem(redactUrl(config.redisUrl), problem, (error as Error).message), { cause: error });
  }
  return client;
}

/**
 * Runs an operator command against Redis: loads the configuration (exit 2 when it is bad),
 * connects (exit 1 with the reason when Redis cannot be reached) and always disconnects.
 */
export async function withRedis(run: (client: RedisClient, config: WorkerConfig) => Promise<void>, profile: 'worker' | 'gate' = 'worker'): Promise<void> {
  const config = configOrExit();
  if (!config) return;
  let client: RedisClient;
  try {
    client = await connect(config, profile);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.failure;
    exitWhenIdle();
    return;
  }
  try {
    await run(client, config);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.failure;
  } finally {
    client.disconnect();
    exitWhenIdle();
  }
}

/**
 * Ends an operator command once its output is written. A client that gave up connecting can leave
 * ioredis's reconnect timer behind for a few seconds; the timer is unref'd, so it ends nothing early.
 */
function exitWhenIdle(): void {
  setTimeout(() => process.exit(), 200).unref();
}

/** A usage error found before Redis is asked: the message (it names the option) and exit code 2. */
export function usageError(run: () => void): boolean {
  try {
    run();
    return false;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = EXIT.usage;
    return true;
  }
}
