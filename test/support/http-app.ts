import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildHttpApp, type HttpServerOptions } from '../../lib/worker/http-server';
import type { RedisClient } from '../../lib/redis/client';

/** A route as the app registered it: its method and path in the OpenAPI form (`/budget/{symbol}`). */
export interface ServedRoute {
  method: string;
  path: string;
  /** Left out of the OpenAPI document (the 405 answers). */
  hidden: boolean;
}

/**
 * The HTTP app with every optional route served (a gate that releases, readiness), ready but not
 * listening, and the routes it registered as fastify reported them (`onRoute`). Nothing in it
 * touches Redis until a request comes.
 */
export async function servedApp(extra: Partial<HttpServerOptions> = {}): Promise<{ app: FastifyInstance; routes: ServedRoute[] }> {
  const app = buildHttpApp({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    redis: {} as RedisClient,
    worker: { mode: 'shadow', healthFacts: {} as never },
    instanceId: 'doc',
    maxBudgetAgeSec: 15,
    gate: { name: 'doc', evaluate: async () => ({ allow: true, reason: 'within_budget', enforced: false, failOpen: false, wouldBlock: false, mode: 'shadow' }), release: async () => false },
    readiness: async () => ({ ready: false, evaluatedAt: new Date(0).toISOString(), window: { from: '', to: '', seconds: 0 }, items: [] }),
    ...extra,
  });
  const routes: ServedRoute[] = [];
  app.addHook('onRoute', (route) => {
    const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
    for (const method of [route.method].flat()) routes.push({ method, path: route.url.replace(/:(\w+)/g, '{$1}'), hidden });
  });
  await app.ready();
  return { app, routes };
}

/** The operations of an OpenAPI document, as `METHOD /path`. */
export function documentedOperations(doc: { paths?: object }): string[] {
  return Object.entries((doc.paths ?? {}) as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
}

/** A request for one documented operation, built from the examples of its parameters and body. */
export interface DocumentedRequest {
  method: string;
  /** The path as documented (`/budget/{symbol}`). */
  path: string;
  /** The path with its parameters' examples, and the required query parameters. */
  url: string;
  /** The JSON example of the request body, when the operation takes one. */
  body?: string;
  /** Served without the bearer token (`security: []`). */
  isPublic: boolean;
}

type Parameter = { name: string; in: string; required?: boolean; example?: unknown };
type Operation = { parameters?: Parameter[]; security?: unknown[]; requestBody?: { content: Record<string, { example?: unknown }> } };

/** Every operation of an OpenAPI document as a request a test can send; fails on a required parameter without an example. */
export function documentedRequests(doc: { paths?: object }): DocumentedRequest[] {
  return Object.entries((doc.paths ?? {}) as Record<string, Record<string, Operation>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => {
      const value = (p: Parameter): string => {
        if (p.example === undefined) throw new Error(`${method} ${path}: parameter ${p.name} has no example`);
        return encodeURIComponent(String(p.example));
      };
      const params = op.parameters ?? [];
      let url = path;
      for (const p of params.filter((q) => q.in === 'path')) url = url.replace(`{${p.name}}`, value(p));
      const query = params.filter((q) => q.in === 'query' && q.required).map((p) => `${p.name}=${value(p)}`);
      const example = op.requestBody?.content['application/json']?.example;
      return {
        method: method.toUpperCase(),
        path,
        url: query.length > 0 ? `${url}?${query.join('&')}` : url,
        body: example === undefined ? undefined : JSON.stringify(example),
        isPublic: op.security?.length === 0,
      };
    }),
  );
}
