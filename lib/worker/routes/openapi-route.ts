import { z } from 'zod';
import { UNAUTHORIZED, answer } from './answer-schemas';
import type { WorkerRoute } from './route-context';

/** `GET /openapi.json`: the OpenAPI document generated from the routes' schemas. */
export const openApiRoute: WorkerRoute = async (app) => {
  app.get(
    '/openapi.json',
    {
      schema: {
        operationId: 'getOpenApi',
        summary: 'This document.',
        response: { 200: answer(z.looseObject({}), 'OpenAPI 3.1.'), 401: UNAUTHORIZED },
      },
    },
    async () => app.swagger() as unknown as Record<string, unknown>,
  );
};
