import type Redis from 'ioredis';
import type { RedisClient } from '../../lib/redis/client';

/**
 * Runs `run` and counts the writes on the client's socket meanwhile: ioredis sends a whole
 * pipeline in one write, so this counts round trips.
 */
export async function socketWrites(client: RedisClient, run: () => Promise<unknown>): Promise<number> {
  const stream = (client as Redis).stream;
  const original = stream.write;
  let writes = 0;
  stream.write = function (this: typeof stream, ...args: Parameters<typeof original>) {
    writes += 1;
    return original.apply(this, args);
  } as typeof original;
  try {
    await run();
  } finally {
    stream.write = original;
  }
  return writes;
}
