import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';

export type { Logger } from 'pino';

/** JSON logs on stdout (one object per line), tagged with the service name. */
export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const options = { level, base: { service: 'p2.8-portfolio-risk-governor' } };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything: the default for library users who pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
