import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** The levels LOG_LEVEL accepts, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The service's name in logs and in `/health`, as the upstream service called itself. */
export const SERVICE_NAME = 'p2.8-portfolio-risk-governor';

/** JSON logs on stdout (one object per line), tagged with the service name. */
export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const options = { level, base: { service: SERVICE_NAME } };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything: the default for library users who pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
