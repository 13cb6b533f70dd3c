import { createServer, Socket, type Server } from 'node:net';

/**
 * A loopback TCP proxy in front of a redis-server, for faults no signal to the server can make:
 * `freeze()` stops forwarding without closing anything (a silently dead peer: no FIN, no RST),
 * `retarget()` sends new connections to another server after dropping the current ones (a
 * failover that a client sees as one reconnect).
 */
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private frozen = false;
  private readonly held: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0, targetPort);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Stops moving bytes either way; sockets stay open and what arrives meanwhile is held. */
  freeze(): void {
    this.frozen = true;
  }

  /** Delivers what was held, in order, and forwards again. */
  thaw(): void {
    this.frozen = false;
    for (const flush of this.held.splice(0)) flush();
  }

  /** Drops every proxied connection and sends later ones to `targetPort`. */
  retarget(targetPort: number): void {
    this.targetPort = targetPort;
    this.dropConnections();
  }

  dropConnections(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    upstream.connect(this.targetPort, '127.0.0.1');
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (this.frozen) this.held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
  }
}
