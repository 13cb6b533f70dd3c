import type { Redis } from 'ioredis';
import type { RedisClient, RedisConnectOptions } from '../connect-options';

/**
 * One Redis deployment mode (standalone, Sentinel, Cluster) and what the rest of the package needs
 * to know about it: how to make a client, and what such a client can do. Code that depends on the
 * deployment asks the client's mode (`redisModeOf`) instead of testing `isCluster` or `instanceof`,
 * so a new mode is one file in this folder plus its entry in `redis-modes.ts`.
 */
export interface RedisMode {
  readonly name: 'standalone' | 'sentinel' | 'cluster';
  /** Whether connect options ask for this mode (Sentinel and Cluster by their seed lists). */
  configured(options: RedisConnectOptions): boolean;
  /** Whether `client` was made in this mode. */
  owns(client: RedisClient): boolean;
  /** A client with the fail-fast settings of the options' profile. */
  createClient(options: RedisConnectOptions): RedisClient;
  /**
   * Whether one MULTI/EXEC block (and one pipeline on one connection) may hold commands on keys
   * of different hash slots. False on a Cluster, where each goes to the node of its slot.
   */
  readonly transactionsSpanKeys: boolean;
  /** The connections that together hold the keyspace, each to be SCANned on its own. */
  scanNodes(client: RedisClient): Redis[];
  /** The client's per-command time limit (ioredis `commandTimeout`) in ms; undefined when it has none. */
  commandTimeoutMs(client: RedisClient): number | undefined;
  /**
   * The one connection of `client` through which server-assisted client-side caching (CLIENT
   * TRACKING with redirection to one subscriber) keeps a local cache coherent; undefined where it
   * cannot (a Cluster, whose masters each send their own invalidations).
   */
  trackingConnection(client: RedisClient): Redis | undefined;
}
