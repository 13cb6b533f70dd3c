import type { FastifyInstance } from 'fastify';
import { isPublicRoute } from './bearer-auth';

/** Methods a known path may be asked with; those it does not serve get 405, not 404. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * Notes every route added from now on; the returned function, called after the routes are
 * registered, answers the other methods of each of their paths with 405 and an `Allow` header
 * (HEAD is served wherever GET is). The 405 routes are left out of the OpenAPI document.
 */
export function answerOtherMethods(app: FastifyInstance): () => void {
  const served = new Map<string, { methods: Set<string>; isPublic: boolean }>();
  let closed = false;
  app.addHook('onRoute', (route) => {
    if (closed) return;
    const entry = served.get(route.url) ?? { methods: new Set<string>(), isPublic: isPublicRoute(route.schema) };
    for (const method of [route.method].flat()) {
      entry.methods.add(method);
      if (method === 'GET') entry.methods.add('HEAD');
    }
    served.set(route.url, entry);
  });
  return () => {
    void app.register(async (instance) => {
      closed = true;
      for (const [url, { methods, isPublic }] of served) {
        const allow = [...methods].join(', ');
        instance.route({
          method: METHODS.filter((m) => !methods.has(m)),
          url,
          schema: isPublic ? { hide: true, security: [] } : { hide: true },
          handler: async (_request, reply) => reply.code(405).header('allow', allow).send({ error: 'method_not_allowed', message: `use ${allow}` }),
        });
      }
    });
  };
}
