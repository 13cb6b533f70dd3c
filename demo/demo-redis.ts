import { randomBytes } from 'node:crypto';
import { DEFAULT_KEY_PREFIX } from '../lib/redis/keys';
import { LocalRedisServer } from '../dev/local-redis-server';

/** The Redis the demo runs against. */
export interface DemoRedis {
  url: string;
  /** First segment of every key the demo and its worker touch. */
  keyPrefix: string;
  /** The demo's own server; undefined when REDIS_URL names a server the demo does not own. */
  server: LocalRedisServer | undefined;
}

/** The demo cannot run here (no redis-server, unusable REDIS_URL); the message says what to do. */
export class DemoSetupError extends Error {
  readonly code = 'P28_DEMO_SETUP';
  constructor(message: string) {
    super(message);
    this.name = 'DemoSetupError';
  }
}

function missingServerMessage(binary: string): string {
  return [
    `The demo needs Redis, but ${binary} could not be run${binary === 'redis-server' ? ' (not found on PATH)' : ''}. Either:`,
    '  install it                 apt-get install redis-server   (Debian/Ubuntu)',
    '                             brew install redis             (macOS)',
    '  name the binary            REDIS_SERVER_BIN=/path/to/redis-server npm run demo',
    '  or use a Redis you run     REDIS_URL=redis://127.0.0.1:6379 npm run demo',
    '                             (the demo then keeps its keys under a prefix of its own,',
    '                             p28demo<random>, and deletes them at the end)',
  ].join('\n');
}

/**
 * With REDIS_URL set: that server, under a fresh key prefix (`p28demo<random>`), so the demo never
 * reads or writes a key of a real system there. Otherwise a private `redis-server` on a free port,
 * under the production prefix (`quantum`), so the output shows the real key names.
 */
export async function openDemoRedis(env: NodeJS.ProcessEnv): Promise<DemoRedis> {
  const given = env.REDIS_URL?.trim();
  if (given) {
    if (!/^rediss?:\/\/\S+$/.test(given)) throw new DemoSetupError(`REDIS_URL must be a redis:// or rediss:// URL, got ${JSON.stringify(given)}`);
    return { url: given, keyPrefix: `p28demo${randomBytes(4).toString('hex')}`, server: undefined };
  }
  const binary = env.REDIS_SERVER_BIN ?? 'redis-server';
  if (!LocalRedisServer.isAvailable(binary)) throw new DemoSetupError(missingServerMessage(binary));
  const server = await LocalRedisServer.start({ binary });
  return { url: server.url, keyPrefix: DEFAULT_KEY_PREFIX, server };
}
