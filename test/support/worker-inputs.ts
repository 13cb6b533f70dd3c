import type { RedisClient } from '../../lib/redis/client';
import type { LocalRedisServer } from './local-redis-server';
import { HeatGateStub } from './heat-gate-stub';
import { connectedClient, useRedisServer } from './redis';

/**
 * What a suite that runs real worker processes needs: a private redis-server with a connected
 * client, and a heat gate stub, both made before the suite and closed after it; before each test
 * the database is emptied and the stub serves a heat of 0.65. `ready` hands the client and the
 * stub to the suite once they exist.
 */
export function useWorkerInputs(ready: (client: RedisClient, stub: HeatGateStub) => void): { readonly server: LocalRedisServer } {
  const redis = useRedisServer();
  let client: RedisClient | undefined;
  let stub: HeatGateStub | undefined;
  before(async () => {
    client = await connectedClient(redis.server);
    stub = await HeatGateStub.start();
    ready(client, stub);
  });
  after(async () => {
    client?.disconnect();
    await stub?.close();
  });
  beforeEach(async () => {
    await client!.flushall();
    stub!.serveHeat(0.65);
  });
  return redis;
}
