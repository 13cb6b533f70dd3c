import { z } from 'zod';
import { Mode } from '../../../types/mode';
import { GateReason, PermitRequest, type GateDecision } from '../../../types/permit';
import { BAD_REQUEST, TOO_LARGE, UNAUTHORIZED, answer } from './answer-schemas';
import type { WorkerRoute } from './route-context';

const Decision = z
  .object({
    allow: z.boolean(),
    reason: GateReason,
    enforced: z.boolean().describe('Taken under mode=enforce.'),
    failOpen: z.boolean().describe('The gate could not judge and let the plan through.'),
    wouldBlock: z.boolean().describe('The plan breaks the budget, whether or not it was blocked.'),
    mode: Mode.nullable().describe('The mode of the budget hash; null when none was read.'),
    detail: z.string().optional(),
    source: z.enum(['redis', 'cache', 'none']).optional().describe('Where the budget hash came from.'),
    budgetUsd: z.number().optional(),
    positionNotionalUsd: z.number().optional(),
    projectedNotionalUsd: z.number().optional().describe('Position plus plan plus reservedUsd: what was compared with budgetUsd.'),
    reservedUsd: z.number().optional().describe('Live reservations of other plans on the symbol that the decision counted.'),
  })
  .describe('The budget gate\'s decision, the same value the Node plugin returns from BudgetGate.evaluate.') satisfies z.ZodType<GateDecision>;

const Plan = PermitRequest.meta({
  description: 'A trade plan asking for a permit. Sizes are unsigned; side gives the direction. A body that does not fit this schema still gets a 200 with a fail-open invalid_request decision.',
  examples: [{ planId: 'plan-1', symbol: 'BTCUSDT', action: 'OPEN', side: 'BUY', qty: 0.01, notionalUsd: 1000 }],
});

/** `POST /v1/decisions`: the decision of the service's gate, served when the service has one. */
export const decisionsRoute: WorkerRoute = async (app, { gate }) => {
  if (!gate) return;
  app.post(
    '/v1/decisions',
    {
      schema: {
        operationId: 'decide',
        summary: 'The budget gate\'s decision for one trade plan (the same BudgetGate the Node plugin runs).',
        body: Plan,
        response: {
          200: answer(Decision, 'The decision. Every outcome, a block, an allow or a fail-open, is a 200.', {
            allow: false,
            reason: 'p28_budget_violation',
            enforced: true,
            failOpen: false,
            wouldBlock: true,
            mode: 'enforce',
            detail: 'projected_over_budget',
            budgetUsd: 1348,
            positionNotionalUsd: 50000,
            projectedNotionalUsd: 51000,
            source: 'redis',
          }),
          400: BAD_REQUEST,
          401: UNAUTHORIZED,
          413: TOO_LARGE,
        },
      },
      // The schema documents the body; the gate judges it: any JSON value is handed over as is, and
      // one that fails the schema gets a fail-open `invalid_request`, exactly as for a Node caller.
      validatorCompiler: () => () => true,
    },
    async (request) => gate.evaluate(request.body as unknown as PermitRequest),
  );
};
