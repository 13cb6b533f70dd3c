import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the stub answers; change it between requests. */
export interface HeatGateResponse {
  status: number;
  body: string;
  /** Milliseconds to wait before answering (to provoke a client timeout). */
  delayMs: number;
  /**
   * When set, this many bytes of comment lines are streamed (chunked, no Content-Length) before
   * `body`: a runaway exporter, without the stub itself holding the whole answer in memory.
   */
  padBytes?: number;
}

const PAD_CHUNK = Buffer.from(`# ${'x'.repeat(1021)}\n`.repeat(64));

/** The exposition text of a P2.6 Heat Gate reporting `heat`. */
export function heatExposition(heat: number | string): string {
  return [
    '# HELP p26_heat_value Portfolio heat in [0,1]',
    '# TYPE p26_heat_value gauge',
    `p26_heat_value ${heat}`,
    '# HELP p26_up Whether the heat gate is up',
    '# TYPE p26_up gauge',
    'p26_up 1',
    '',
  ].join('\n');
}

/**
 * A local HTTP stand-in for the P2.6 Heat Gate's /metrics on a free loopback port: serves
 * `response`, counts requests, and can be closed to play a heat gate that is down. The demo runs
 * the worker against it; the tests also use it to play a slow or broken heat gate.
 */
export class HeatGateStub {
  response: HeatGateResponse = { status: 200, body: heatExposition(0.65), delayMs: 0 };
  requests = 0;
  private readonly server: Server;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor() {
    this.server = createServer((req, res) => {
      this.requests += 1;
      const { status, body, delayMs, padBytes } = this.response;
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4' });
        if (padBytes === undefined) return void res.end(body);
        let left = padBytes;
        const pump = (): void => {
          while (left > 0 && !res.destroyed) {
            const chunk = left >= PAD_CHUNK.length ? PAD_CHUNK : PAD_CHUNK.subarray(0, left);
            left -= chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end(body);
        };
        pump();
      };
      if (delayMs <= 0) return answer();
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        answer();
      }, delayMs);
      this.timers.add(timer);
    });
  }

  /** Listens on `port` (default 0: a free one) of 127.0.0.1; rejects when the port is taken. */
  static async start(port = 0): Promise<HeatGateStub> {
    const stub = new HeatGateStub();
    await new Promise<void>((resolve, reject) => {
      stub.server.once('error', reject);
      stub.server.listen(port, '127.0.0.1', () => {
        stub.server.off('error', reject);
        resolve();
      });
    });
    return stub;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/metrics`;
  }

  /** Serves `p26_heat_value <heat>` with status 200 at once. */
  serveHeat(heat: number | string): void {
    this.response = { status: 200, body: heatExposition(heat), delayMs: 0 };
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
