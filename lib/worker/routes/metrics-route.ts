import { z } from 'zod';
import type { WorkerRoute } from './route-context';

/** `GET /metrics`: the worker's registry (with its gate's metrics) in the Prometheus text format; served without the token. */
export const metricsRoute: WorkerRoute = async (app, { registry }) => {
  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics of the worker and of the gate behind /v1/decisions.',
        security: [],
        response: { 200: { description: 'Prometheus text exposition.', content: { 'text/plain': { schema: z.string() } } } },
      },
    },
    async (_request, reply) => reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(await registry.metrics()),
  );
};
