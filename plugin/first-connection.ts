import type { RedisClient } from '../lib/redis/client';
import type { GateDecision } from '../types/permit';
import { failOpenDecision, unexpectedDecision } from './decide';

/**
 * Client states of a first connection under way: a decision waits for it. Not `wait` (a lazy
 * client passed in, which connects only when a command is sent): nothing would end that wait.
 */
const FIRST_CONNECTION_STATES: ReadonlySet<string> = new Set(['connecting', 'connect']);

/**
 * The gate's wait for its client's first connection: `ready()` resolves at the first `ready`, and
 * a decision taken while the first attempt is under way waits for it and then reads, all within
 * `timeoutMs`. Once the first attempt has ended, however, nothing waits any more: a Redis that is
 * down at start is failed open at once, as it is later.
 */
export class FirstConnection {
  /** True while the client makes its first connection: decisions wait for it. */
  private underWay: boolean;
  private ended = false;
  /** Resolves at the first `ready` (or at `end()`): `ready()`. */
  private readonly connected: Promise<void>;
  private markConnected: () => void = () => undefined;
  /** Resolves when the first connection attempt has ended, however (or at `end()`). */
  private readonly attemptEnded: Promise<void>;
  private endAttempt: () => void = () => undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly timeoutMs: number,
  ) {
    this.underWay = FIRST_CONNECTION_STATES.has(client.status);
    this.connected = new Promise((resolve) => {
      this.markConnected = resolve;
    });
    this.attemptEnded = new Promise((resolve) => {
      this.endAttempt = resolve;
    });
    if (client.status === 'ready') this.markConnected();
    else this.watch();
    if (!this.underWay) this.endAttempt();
  }

  /** True while the client makes its first connection. */
  get waiting(): boolean {
    return this.underWay;
  }

  /** Resolves at the client's first `ready`, or at `end()`; never rejects. */
  ready(): Promise<void> {
    return this.connected;
  }

  /**
   * A decision taken while the client makes its first connection: it waits for the connection
   * and then takes `decide`, all within `timeoutMs` from here (one timer for both).
   */
  decide(decide: () => GateDecision | Promise<GateDecision>): Promise<GateDecision> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const status = this.client.status;
        resolve(status === 'ready' ? failOpenDecision('timeout', 'first_connection') : failOpenDecision('redis_unavailable', `client_${status}`));
      }, this.timeoutMs);
      this.attemptEnded
        .then(() => {
          if (this.ended) return failOpenDecision('redis_unavailable', 'gate_closed');
          if (this.client.status !== 'ready') return failOpenDecision('redis_unavailable', `client_${this.client.status}`);
          return decide();
        })
        .catch(unexpectedDecision)
        .then((decision) => {
          clearTimeout(timer);
          resolve(decision);
        });
    });
  }

  /** The gate is closing: waiting decisions fail open with `gate_closed`, and `ready()` resolves. */
  end(): void {
    this.ended = true;
    this.underWay = false;
    this.endAttempt();
    this.markConnected();
  }

  /**
   * Ends the first-connection wait: at the first `ready`, or when the first attempt fails (a
   * Redis that is down at start is then failed open at once, as it is later).
   */
  private watch(): void {
    const client = this.client;
    const done = () => {
      this.underWay = false;
      this.endAttempt();
      client.off('ready', onReady);
      client.off('error', onFailed);
      client.off('end', onFailed);
    };
    const onReady = () => {
      done();
      this.markConnected();
    };
    const onFailed = () => done();
    client.on('ready', onReady);
    client.on('error', onFailed);
    client.on('end', onFailed);
    // A later connection (after a failed first attempt) still resolves ready().
    client.once('ready', () => this.markConnected());
  }
}
