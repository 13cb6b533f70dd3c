import { z } from 'zod';
import { Mode } from '../../../types/mode';
import { SERVICE_NAME } from '../../logger';
import { CYCLE_RESULTS } from '../cycle-report';
import type { HealthBody } from '../health';
import { answer } from './answer-schemas';
import type { WorkerRoute } from './route-context';

const Health = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  service: z.literal(SERVICE_NAME),
  mode: Mode,
  mode_source: z.enum(['env', 'override']),
  redis: z.enum(['connected', 'disconnected']),
  role: z.enum(['leader', 'standby']),
  budgets_age_sec: z.number().min(0).nullable().describe('Seconds since any replica last wrote budgets (the leader heartbeat); null while none is known.'),
  reason: z.string().optional().describe('Why the status is not healthy.'),
  last_success_age_sec: z.number().min(0).nullable().describe('Seconds since this replica\'s last cycle that ended ok or standby; null before the first.'),
  last_cycle_result: z.enum(CYCLE_RESULTS).nullable(),
  instance: z.string().describe('P28_INSTANCE_ID of this replica.'),
  invalid_keys: z
    .array(z.string())
    .optional()
    .describe('Keys the last cycle skipped (a key of the wrong type, a heartbeat from the future), each with its problem; they cost only their own symbol or feature and do not degrade the status.'),
  positions: z
    .object({
      stale: z.number().int().min(0),
      unknown: z.number().int().min(0),
      invalid: z.number().int().min(0),
      feed: z.enum(['complete', 'incomplete']),
      feed_problem: z.string().optional(),
    })
    .nullable()
    .describe('Positions the last leader cycle could not vouch for, by position_status (judged by each plan\'s own notional, never as flat); null on a stand-by.'),
}) satisfies z.ZodType<HealthBody>;

/** `GET /health`: what the health evaluation says, rendered as it is; served without the token. */
export const healthRoute: WorkerRoute = async (app, { health }) => {
  app.get(
    '/health',
    {
      schema: {
        operationId: 'getHealth',
        summary: 'Liveness and readiness of the worker.',
        security: [],
        response: {
          200: answer(Health, 'Healthy.'),
          503: answer(Health, 'Redis unreachable, or budgets not being written.'),
        },
      },
    },
    async (_request, reply) => {
      const { code, body } = await health();
      return reply.code(code).header('cache-control', 'no-store').send(body);
    },
  );
};
