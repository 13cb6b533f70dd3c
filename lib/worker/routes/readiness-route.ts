import { z } from 'zod';
import { READINESS_ITEMS, type ReadinessReport } from '../../readiness/readiness';
import { parseWindow } from '../../readiness/window';
import { fromRedis } from '../http-error';
import { BAD_REQUEST, REDIS_DOWN, UNAUTHORIZED, answer } from './answer-schemas';
import type { WorkerRoute } from './route-context';

const WindowQuery = z.object({
  window: z
    .preprocess(
      // A repeated parameter is judged as the text it reads as, like any other value.
      (value) => (value === undefined ? value : String(value)),
      z
        .string()
        .default('24h')
        .transform((raw, ctx) => {
          try {
            return parseWindow(raw);
          } catch (error) {
            ctx.addIssue({ code: 'custom', message: `query parameter ${(error as Error).message}` });
            return z.NEVER;
          }
        }),
    )
    .describe('How far back to look: a duration such as 30m, 24h or 7d, between 1m and 30d.'),
});

const Report = z
  .object({
    ready: z.boolean(),
    evaluatedAt: z.iso.datetime(),
    window: z.object({ from: z.iso.datetime(), to: z.iso.datetime(), seconds: z.number().min(0) }),
    items: z.array(
      z.object({
        id: z.enum(READINESS_ITEMS),
        title: z.string(),
        pass: z.boolean(),
        summary: z.string(),
        figures: z.record(z.string(), z.union([z.number(), z.string(), z.null()])),
        thresholds: z.record(z.string(), z.union([z.number(), z.string()])),
        details: z.array(z.string()),
        listed: z.array(z.record(z.string(), z.union([z.number(), z.string()]))),
      }),
    ),
  })
  .describe('The guide\'s pre-activation checklist judged from the window\'s records; ready only when every item passes (docs/decision-log.md).') satisfies z.ZodType<ReadinessReport>;

/** `GET /v1/readiness`: the pre-activation checklist, served when the service can judge it. */
export const readinessRoute: WorkerRoute = async (app, { readiness }) => {
  if (!readiness) return;
  app.get(
    '/v1/readiness',
    {
      schema: {
        operationId: 'getReadiness',
        summary: 'The pre-activation checklist over a window: each item pass or fail with its figures and threshold (the same report as p28-worker readiness --json).',
        querystring: WindowQuery,
        response: {
          200: answer(Report, 'The report; `ready` is true only when every item passes.'),
          400: BAD_REQUEST,
          401: UNAUTHORIZED,
          503: REDIS_DOWN,
        },
      },
    },
    async (request) => fromRedis(() => readiness(request.query.window)),
  );
};
