import { z } from 'zod';

/** What a client gets for a request the server refuses: a stable code and a message for people. */
export const ErrorBody = z.object({
  error: z.string(),
  message: z.string().optional(),
  detail: z
    .array(z.object({ type: z.string(), loc: z.array(z.string()), msg: z.string(), input: z.unknown().optional() }))
    .optional()
    .describe('On the upstream service\'s endpoints: what was wrong where, in FastAPI\'s shape.'),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** A refusal with its HTTP status, thrown by handlers and rendered by the server's error handler. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: ErrorBody,
  ) {
    super(body.message ?? body.error);
  }
}

/** Runs a Redis read for a route, turning a connection failure into a 503 without its details. */
export async function fromRedis<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw new HttpError(503, { error: 'redis_unavailable', message: error instanceof Error ? error.message : String(error) });
  }
}
