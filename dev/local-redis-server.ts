import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, Socket } from 'node:net';

/**
 * A private `redis-server` on a free loopback port, owned by this process: used by the tests, the
 * benchmarks and the demo so that they can pause (SIGSTOP), kill and restart it without touching a
 * shared instance. It keeps nothing on disk (`--save "" --appendonly no`).
 */
export class LocalRedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly binary: string,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  /** Starts a server on a free port and resolves once it answers PING; `args` are added to its command line. */
  static async start(options: { binary?: string; port?: number; args?: readonly string[] } = {}): Promise<LocalRedisServer> {
    const binary = options.binary ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
    if (!LocalRedisServer.isAvailable(binary)) {
      throw new Error(
        `${binary} was not found on PATH. Install it (Debian/Ubuntu: apt-get install redis-server; ` +
          'macOS: brew install redis) or set REDIS_SERVER_BIN to its path.',
      );
    }
    // A free port can be taken by someone else before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      const server = new LocalRedisServer(options.port ?? (await freePort()), binary, options.args);
      try {
        await server.spawn();
        return server;
      } catch (error) {
        if (options.port !== undefined || attempt >= 3) throw error;
      }
    }
  }

  /** Whether `binary` can be run. */
  static isAvailable(binary = process.env.REDIS_SERVER_BIN ?? 'redis-server'): boolean {
    const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' });
    return probe.error === undefined && probe.status === 0;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Thaws a paused server (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server at once (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Starts the server again on the same port (after `kill`). */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  /** Stops the server for good. */
  async stop(): Promise<void> {
    await this.kill();
  }

  private async spawn(): Promise<void> {
    const child = spawn(
      this.binary,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--loglevel', 'warning', ...this.extraArgs],
      { stdio: 'ignore' },
    );
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    const stopOnExit = () => child.kill('SIGKILL');
    process.once('exit', stopOnExit);
    child.once('exit', () => process.off('exit', stopOnExit));
    const deadline = Date.now() + 5000;
    // The server answering must be this child: another process could have taken the port first.
    while ((await serverPid(this.port)) !== child.pid) {
      if (!this.child) throw new Error(`${this.binary} on port ${this.port} exited during start`);
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.binary} on port ${this.port} did not answer within 5 s`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The process id the server on `port` reports (INFO server), or undefined if none answers. */
function serverPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const done = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(200, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.on('data', (data) => {
      reply += data.toString();
      const match = /process_id:(\d+)/.exec(reply);
      if (match) done(Number(match[1]));
      else if (reply.startsWith('-')) done(undefined);
    });
    socket.connect(port, '127.0.0.1', () => socket.write('INFO server\r\n'));
  });
}
