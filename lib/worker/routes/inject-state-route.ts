import { z } from 'zod';
import { HttpError, fromRedis } from '../http-error';
import { REDIS_DOWN, UNAUTHORIZED, UNPROCESSABLE, answer, refusal } from './answer-schemas';
import type { WorkerRoute } from './route-context';
import { ignoreBodies, queryFloat, refuseInvalidQuery } from './upstream-query';

const TEST_MODE_OFF = { error: 'forbidden', message: 'test mode not enabled (P28_TEST_MODE=0)' };

const InjectQuery = z.object({
  equity_usd: queryFloat({ min: 0, example: 100000 }),
  drawdown: queryFloat({ default: 0 }),
});

const Injected = z.object({
  success: z.literal(true),
  injected: z.object({ equity_usd: z.string(), drawdown: z.string(), timestamp: z.string() }),
  message: z.string(),
});

/** `POST /test/inject_portfolio_state`: the upstream service's test hook, served in test mode only. */
export const injectStateRoute: WorkerRoute = async (app, { redis, keys, now, logger, testMode, injectedStateTtlSec: ttlSec }) => {
  ignoreBodies(app);
  app.post(
    '/test/inject_portfolio_state',
    {
      schema: {
        operationId: 'injectPortfolioState',
        summary: 'Test only (P28_TEST_MODE=1): writes quantum:state:portfolio with a 120 s TTL.',
        querystring: InjectQuery,
        response: {
          200: answer(Injected, 'Written.', {
            success: true,
            injected: { equity_usd: '100000', drawdown: '0', timestamp: '1769553243' },
            message: 'Portfolio state injected (TTL 120s)',
          }),
          401: UNAUTHORIZED,
          403: refusal('P28_TEST_MODE is not 1.', TEST_MODE_OFF),
          422: UNPROCESSABLE,
          503: REDIS_DOWN,
        },
      },
      attachValidation: true,
    },
    async (request) => {
      if (!testMode) throw new HttpError(403, TEST_MODE_OFF);
      refuseInvalidQuery(request);
      const { equity_usd: equityUsd, drawdown } = request.query;
      const injected = { equity_usd: String(equityUsd), drawdown: String(drawdown), timestamp: String(Math.floor(now() / 1000)) };
      await fromRedis(() => redis.multi().hset(keys.portfolioState, injected).expire(keys.portfolioState, ttlSec).exec());
      logger.info({ equity_usd: equityUsd, drawdown }, 'test: portfolio state injected');
      return { success: true as const, injected, message: `Portfolio state injected (TTL ${ttlSec}s)` };
    },
  );
};
