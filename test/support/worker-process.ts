import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const SKEW_PRELOAD = join(__dirname, 'skew-clock.cjs');

export interface WorkerProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The JSON log lines printed so far. */
  logLines: () => Record<string, unknown>[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The HTTP port, once the startup line has said it. */
  port: () => Promise<number>;
  /** Ends the process (SIGCONT first, in case it was stopped) and waits for its exit. */
  kill: () => Promise<void>;
}

/**
 * Runs `p28-worker` (from source) with `args` in a real process. `clockSkewMs` moves the process's
 * wall clock (Date.now, new Date) by that much with a preload, as on a host whose clock is wrong.
 */
export function runWorkerProcess(args: string[], env: Record<string, string>, options: { clockSkewMs?: number; nodeArgs?: string[] } = {}): WorkerProcess {
  const preload = options.clockSkewMs ? ['--require', SKEW_PRELOAD] : [];
  const child = spawn(process.execPath, [...preload, ...(options.nodeArgs ?? []), '--import', 'tsx', join(ROOT, 'lib', 'cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, ...(options.clockSkewMs ? { CLOCK_SKEW_MS: String(options.clockSkewMs) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const logLines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  const port = async () => {
    const deadline = Date.now() + 30000;
    for (;;) {
      const started = logLines().find((l) => typeof l.port === 'number');
      if (started) return started.port as number;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`worker did not start: ${out}${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exit;
  };
  return { child, stdout: () => out, stderr: () => err, logLines, exit, port, kill };
}
