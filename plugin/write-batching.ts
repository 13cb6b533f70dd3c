import type { Duplex } from 'node:stream';
import type { RedisClient } from '../lib/redis/client';

/**
 * Reads issued while others are in flight leave in one write: the first of them corks the
 * connection's socket, which is uncorked once the current turn's callbacks and promise reactions
 * have run (`process.nextTick`). Under hundreds of concurrent permits the replies of one turn
 * release their callers' next reads together, and those reads go out as one `writev` instead of
 * one write system call each. A read with none in flight is written at once, so a serial caller
 * pays nothing. Nothing waits for an earlier batch's replies (as ioredis auto-pipelining does), and
 * corking changes only when bytes reach the socket, never what is sent or in which order.
 *
 * Applies to a client with one socket (standalone, Sentinel); a Cluster client's reads go out as
 * before.
 */
export class WriteBatching {
  private corked: Duplex | undefined;

  private readonly uncork = (): void => {
    const stream = this.corked;
    this.corked = undefined;
    stream?.uncork();
  };

  constructor(private readonly client: RedisClient) {}

  /** Called just before a read is sent, with whether other reads are in flight. */
  beforeRead(othersInFlight: boolean): void {
    if (!othersInFlight || this.corked !== undefined) return;
    // ioredis writes every command to `stream`, the connection's socket; a Cluster has none.
    const stream = (this.client as { stream?: Duplex }).stream;
    if (stream === undefined || !stream.writable) return;
    stream.cork();
    this.corked = stream;
    process.nextTick(this.uncork);
  }
}
