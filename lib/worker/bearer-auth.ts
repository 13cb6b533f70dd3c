import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { HttpError } from './http-error';

/** A fixed-length digest, so that the token comparison takes the same time whatever its length. */
const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** A bearer-token check in constant time; the token itself is never logged or echoed. */
function tokenCheck(apiToken: string): (header: string | undefined) => boolean {
  const expected = digest(apiToken);
  return (header) => {
    const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
    return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
  };
}

/** Whether a route is served without the bearer token: its documented security is `[]`. */
export function isPublicRoute(schema: FastifySchema | undefined): boolean {
  const security = (schema as { security?: unknown[] } | undefined)?.security;
  return Array.isArray(security) && security.length === 0;
}

/**
 * When P28_API_TOKEN is set, every request but those of public routes needs
 * `Authorization: Bearer <apiToken>`; others get 401 with `WWW-Authenticate: Bearer`.
 */
export function requireBearerToken(app: FastifyInstance, apiToken: string | undefined): void {
  if (!apiToken) return;
  const authorized = tokenCheck(apiToken);
  app.addHook('onRequest', async (request, reply) => {
    if (isPublicRoute(request.routeOptions.schema) || authorized(request.headers.authorization)) return;
    reply.header('www-authenticate', 'Bearer');
    throw new HttpError(401, { error: 'unauthorized', message: 'a valid Authorization: Bearer token is required' });
  });
}
