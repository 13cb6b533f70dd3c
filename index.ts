/**
 * portfolio-risk-governor: the public API. The budget worker lives in `lib/`, the Governor gate in
 * `plugin/`, and the wire formats both share in `types/`.
 */
export * from './types';
export * from './lib/budget';
export * from './lib/config';
export * from './lib/keys';
export { createRedisClient, waitForReady, REDIS_DEFAULTS } from './lib/redis';
export type { RedisClient, RedisConnectOptions, RedisProfile } from './lib/redis';
export { createLogger } from './lib/logger';
export { LocalRedisServer } from './lib/local-redis-server';
