import { Cluster, type ClusterOptions } from 'ioredis';
import { profileOptions, urlOptions, withoutLazyConnect, type RedisClient, type RedisConnectOptions } from '../connect-options';
import type { RedisMode } from './redis-mode';

/**
 * A Redis Cluster seeded by REDIS_CLUSTER_NODES: each key lives on the master of its hash slot, so
 * a transaction cannot span keys of different slots, SCAN runs on every master, and invalidations
 * come from each master separately.
 */
export const CLUSTER: RedisMode = Object.freeze({
  name: 'cluster',
  configured: (options: RedisConnectOptions) => (options.clusterNodes?.length ?? 0) > 0,
  owns: (client: RedisClient) => client.isCluster,
  createClient: (options: RedisConnectOptions) => {
    const fromUrl = urlOptions(options.url, options.tls);
    const base = profileOptions(options);
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      lazyConnect: base.lazyConnect,
      enableAutoPipelining: base.enableAutoPipelining,
      clusterRetryStrategy: base.retryStrategy,
      // ioredis connects each node on demand; a node option `lazyConnect: false` makes the
      // slot-refresh connection of a seed that is now a replica or gone fail, and the cluster
      // never becomes ready (a worker started after a failover never connected).
      redisOptions: {
        ...withoutLazyConnect(base),
        username: fromUrl.username,
        password: fromUrl.password,
        tls: fromUrl.tls,
      },
    };
    return new Cluster(options.clusterNodes ?? [], clusterOptions);
  },
  transactionsSpanKeys: false,
  scanNodes: (client: RedisClient) => (client as Cluster).nodes('master'),
  // The one its node connections get.
  commandTimeoutMs: (client: RedisClient) => (client as Cluster).options.redisOptions?.commandTimeout,
  trackingConnection: () => undefined,
});
