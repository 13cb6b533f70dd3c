import { expect } from 'chai';
import { judgeHealth, type HealthInput, type WorkerHealthFacts } from '../../../lib/worker/health';
import { redisErrorCodeIn as failureCause } from '../../../lib/redis/error-cause';

const NOW = 1_764_000_000_000;

function input(worker: Partial<WorkerHealthFacts> = {}, rest: Partial<HealthInput> = {}): HealthInput {
  return {
    worker: {
      mode: 'enforce',
      modeSource: 'env',
      role: 'standby',
      budgetsWrittenAtMs: NOW - 4000,
      startedAtMs: NOW - 60000,
      lastSuccessAtMs: NOW - 1000,
      lastCycleResult: 'standby',
      failedInARow: 0,
      lastError: undefined,
      ...worker,
    },
    redisConnected: true,
    maxBudgetAgeSec: 15,
    nowMs: NOW,
    instanceId: 'w1',
    ...rest,
  };
}

describe('judgeHealth', () => {
  it('is 200 healthy with the contract fields while budgets are younger than the limit', () => {
    const { code, body } = judgeHealth(input());
    expect(code).to.equal(200);
    expect(body).to.deep.include({ status: 'healthy', service: 'p2.8-portfolio-risk-governor', mode: 'enforce', mode_source: 'env', redis: 'connected', role: 'standby', budgets_age_sec: 4 });
    expect(body).not.to.have.property('reason');
  });

  it('is 503 degraded when budgets are older than the limit, on a stand-by too', () => {
    const { code, body } = judgeHealth(input({ budgetsWrittenAtMs: NOW - 16000 }));
    expect(code).to.equal(503);
    expect(body).to.include({ status: 'degraded', budgets_age_sec: 16 });
    expect(body.reason).to.equal('no replica has written budgets for 16 s (HEALTH_MAX_BUDGET_AGE_SEC=15)');
  });

  it('is degraded when no budgets have been seen since a start longer ago than the limit, not before', () => {
    expect(judgeHealth(input({ budgetsWrittenAtMs: undefined, startedAtMs: NOW - 5000 })).code).to.equal(200);
    const late = judgeHealth(input({ budgetsWrittenAtMs: undefined, startedAtMs: NOW - 20000 }));
    expect(late.body).to.include({ status: 'degraded', budgets_age_sec: null });
    expect(late.body.reason).to.match(/since this one started 20 s ago/);
  });

  it('is degraded after three failed cycles in a row, naming the Redis error code', () => {
    expect(judgeHealth(input({ failedInARow: 2, lastError: 'write budgets: OOM command not allowed' })).code).to.equal(200);
    const { body } = judgeHealth(input({ failedInARow: 3, lastError: 'write budgets: OOM command not allowed' }));
    expect(body).to.include({ status: 'degraded' });
    expect(body.reason).to.equal('last 3 cycles failed (OOM): write budgets: OOM command not allowed');
  });

  it('is 503 unhealthy while Redis does not answer, whatever else holds', () => {
    const { code, body } = judgeHealth(input({ failedInARow: 5 }, { redisConnected: false }));
    expect(code).to.equal(503);
    expect(body).to.include({ status: 'unhealthy', redis: 'disconnected' });
  });

  it('names WRONGPASS and NOAUTH, and the variable to fix, when the credentials are the cause', () => {
    const wrong = judgeHealth(input({}, { redisConnected: false, redisProblem: { cause: 'WRONGPASS', message: 'WRONGPASS invalid username-password pair or user is disabled.' } }));
    expect(wrong.body.reason).to.equal('redis refuses the credentials (WRONGPASS): check the user and password in REDIS_URL');
    const none = judgeHealth(input({}, { redisConnected: false, redisProblem: { cause: 'NOAUTH', message: 'NOAUTH Authentication required.' } }));
    expect(none.body.reason).to.equal('redis refuses the credentials (NOAUTH): check the user and password in REDIS_URL');
    const refused = judgeHealth(input({}, { redisConnected: false, redisProblem: { cause: 'CONNECTION', message: 'connect ECONNREFUSED 10.0.0.5:6379' } }));
    // Other causes by their code only: an answer never carries a host.
    expect(refused.body.reason).to.equal('redis does not answer PING (CONNECTION)');
  });
});

describe('failureCause', () => {
  it('finds the Redis error code in a message, or nothing', () => {
    expect(failureCause("lease: NOPERM User p28 has no permissions to run the 'evalsha' command")).to.equal('NOPERM');
    expect(failureCause('read inputs: Command timed out')).to.equal(undefined);
  });
});
