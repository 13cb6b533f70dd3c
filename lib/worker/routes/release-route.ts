import { z } from 'zod';
import { PLAN_ID_MAX } from '../../../types/permit';
import { SYMBOL_PATTERN } from '../../../types/symbol';
import { BAD_REQUEST, UNAUTHORIZED, answer } from './answer-schemas';
import type { WorkerRoute } from './route-context';

const ReleaseParams = z.object({
  // Matched case-insensitively, as in a decision request.
  symbol: z
    .string({ error: 'symbol must be 1-32 letters or digits' })
    .toUpperCase()
    .regex(SYMBOL_PATTERN)
    .meta({ examples: ['BTCUSDT'] }),
  planId: z
    .string({ error: `planId must be 1-${PLAN_ID_MAX} characters` })
    .min(1)
    .max(PLAN_ID_MAX)
    .meta({ examples: ['plan-1'] }),
});

const Released = z.object({
  symbol: z.string(),
  planId: z.string(),
  released: z.boolean().describe('True when the plan held a reservation and it is gone; false when it held none.'),
});

/** `DELETE /v1/reservations/{symbol}/{planId}`: served when the service's gate holds reservations. */
export const releaseRoute: WorkerRoute = async (app, { gate }) => {
  const release = gate?.release?.bind(gate);
  if (!release) return;
  app.delete(
    '/v1/reservations/:symbol/:planId',
    {
      schema: {
        operationId: 'releaseReservation',
        summary: 'Releases the headroom an allowed plan reserved (the plan was filled, cancelled, or blocked by a later gate).',
        params: ReleaseParams,
        response: {
          200: answer(Released, 'Whether a reservation was released. A Redis that cannot be reached answers released false: the reservation then lapses on its own.', {
            symbol: 'BTCUSDT',
            planId: 'plan-1',
            released: true,
          }),
          400: BAD_REQUEST,
          401: UNAUTHORIZED,
        },
      },
    },
    async (request) => {
      const { symbol, planId } = request.params;
      return { symbol, planId, released: await release(planId, symbol) };
    },
  );
};
