import pino, { type Logger } from 'pino';

export interface CapturedLog {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger at `info` that keeps every line it writes, parsed, in `lines`. */
export function captureLogs(): { logger: Logger; lines: CapturedLog[] } {
  const lines: CapturedLog[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as CapturedLog) });
  return { logger, lines };
}
