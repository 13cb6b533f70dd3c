import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDecimal } from '../../../types/wire-number';
import { HttpError } from '../http-error';

// The conventions of the upstream Python service's endpoints (`/budget/*`, the test injection),
// kept for its callers: they take no body, their query numbers read as FastAPI's float parameters,
// and a bad parameter gets FastAPI's 422.

/**
 * As FastAPI did, any body with any content type is ignored, so `curl -X POST`, `curl -d ''` and
 * clients that always send `content-type: application/json` all get their answer instead of a 400
 * or 415. Call it first in the route's plugin: it holds for the plugin's routes only.
 */
export function ignoreBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));
}

/**
 * A query value as a finite number, read as upstream's float parameters read it: surrounding blanks
 * allowed, `0x10`, `0b11`, an empty or blank value and trailing garbage refused; unlike upstream,
 * `nan` and `inf` are refused too. The messages are FastAPI's. `example` is the document's.
 */
export function queryFloat(options: { min?: number; default?: number; example?: number } = {}) {
  let number = z.number({ error: (issue) => (issue.input === undefined ? 'Field required' : 'Input should be a valid finite number') });
  if (options.min !== undefined) number = number.min(options.min, { error: `Input should be greater than or equal to ${options.min}` });
  if (options.example !== undefined) number = number.meta({ examples: [options.example] });
  return z.preprocess(
    (raw) => (raw === undefined ? raw : typeof raw === 'string' ? parseDecimal(raw) : Number.NaN),
    options.default === undefined ? number : number.default(options.default),
  );
}

/** A required query parameter taken as sent (a repeated one as the list of its values). */
export const queryText = () => z.union([z.string(), z.array(z.string())], { error: 'Field required' });

/** FastAPI's error type for a zod issue of a query parameter. */
function fastApiType(code: string, raw: unknown): string {
  if (raw === undefined) return 'missing';
  return code === 'too_small' ? 'greater_than_equal' : 'float_parsing';
}

/**
 * Throws FastAPI's 422 for the first query parameter the route's schema refused, in its `detail`
 * shape (so a caller that reads `detail` still can), with this service's `error` and `message`
 * beside it. The routes validate with `attachValidation` and call this first in their handler.
 */
export function refuseInvalidQuery(request: FastifyRequest): void {
  const issue = request.validationError?.validation[0];
  if (!issue) return;
  const name = issue.instancePath.slice(1);
  const raw = (request.query as Record<string, unknown>)[name];
  const msg = issue.message ?? 'Invalid input';
  const item: { type: string; loc: string[]; msg: string; input?: unknown } = { type: fastApiType(issue.keyword, raw), loc: ['query', name], msg };
  if (raw !== undefined) item.input = raw;
  throw new HttpError(422, { error: 'unprocessable_entity', message: `query parameter ${name}: ${msg}`, detail: [item] });
}
