import type { RedisClient, RedisConnectOptions } from './connect-options';
import { CLUSTER } from './modes/cluster';
import type { RedisMode } from './modes/redis-mode';
import { SENTINEL } from './modes/sentinel';
import { STANDALONE } from './modes/standalone';

export type { RedisMode } from './modes/redis-mode';

/** Every deployment mode, most specific first: the first that claims the options or the client is its mode. */
const MODES: readonly RedisMode[] = [CLUSTER, SENTINEL, STANDALONE];

/** The mode connect options ask for: Cluster with seed nodes, Sentinel with Sentinels, else standalone. */
export function redisModeFor(options: RedisConnectOptions): RedisMode {
  return MODES.find((mode) => mode.configured(options)) ?? STANDALONE;
}

/** The mode a client was made in (a client passed in by a host included). */
export function redisModeOf(client: RedisClient): RedisMode {
  return MODES.find((mode) => mode.owns(client)) ?? STANDALONE;
}
