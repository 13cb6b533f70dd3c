import type { RedisClient } from './client';

/**
 * QUIT (letting pending replies arrive), falling back to dropping the connection after
 * `timeoutMs`. Resolves once the client has ended; never rejects.
 */
export async function quitClient(redis: RedisClient, timeoutMs: number): Promise<void> {
  const hasEnded = (): boolean => redis.status === 'end';
  if (hasEnded()) return;
  const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
  if (redis.status === 'ready') redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([ended, timedOut]);
  clearTimeout(timer);
  if (!hasEnded()) redis.disconnect();
}
