import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

/**
 * The OpenAPI 3.1 description of the worker's HTTP API, generated from the schemas the routes
 * carry (`routes/`); this is the document's head. Register it before the routes: it collects them
 * as they are added. A route served without the token says so with `security: []`.
 */
export function registerOpenApiDocument(app: FastifyInstance, version: string): void {
  void app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'P2.8 Portfolio Risk Governor',
        version,
        description:
          'Budget decisions for Governors that do not embed the Node gate, the upstream service\'s budget endpoints, health and metrics. When P28_API_TOKEN is set, every operation but /health and /metrics needs Authorization: Bearer <token>. Bodies over 64 KiB get 413, malformed JSON 400, a known path with another method 405; HEAD works wherever GET does.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The value of P28_API_TOKEN.' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
}
