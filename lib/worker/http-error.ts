/** What a client gets for a request the server refuses: a stable code and a message for people. */
export interface ErrorBody {
  error: string;
  message?: string;
  /** FastAPI's shape of a validation error, on the upstream service's endpoints: what was wrong where. */
  detail?: { type: string; loc: string[]; msg: string; input?: unknown }[];
}

/** A refusal with its HTTP status, thrown by handlers and rendered by the server's error handler. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: ErrorBody,
  ) {
    super(body.message ?? body.error);
  }
}
