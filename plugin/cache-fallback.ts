import type { RedisKeys } from '../lib/redis/keys';
import type { FailOpenReason, GateDecision, PermitRequest } from '../types/permit';
import { decideFromBudgetFields, type DecisionPolicy } from './decide';
import type { DecisionLogHook } from './decision-log-hook';
import { REDIS_CAUSES } from './guarded-read';
import type { GateLocalCache } from './local-cache';

/**
 * The gate's decisions from its local cache (option `localCache`): before a read, a cached hash
 * answers every decision but an allow; when Redis itself cannot be read, a cached hash still
 * within `staleAfterMs` keeps being enforced. Decisions taken here have `source: 'cache'`.
 */
export class CacheFallback {
  constructor(
    private readonly cache: GateLocalCache,
    private readonly keys: RedisKeys,
    private readonly now: () => number,
    private readonly policy: Readonly<DecisionPolicy>,
    private readonly decisionLog: DecisionLogHook | undefined,
  ) {}

  /**
   * The decision from the cached hash of the plan's symbol, unless that is an allow or there is
   * none. A cached allow is never final: the plan must reserve its increase, and other plans'
   * reservations may have used the headroom since. Every other cached decision stands.
   */
  before(plan: PermitRequest): GateDecision | undefined {
    const cached = this.cache.lookup(this.keys.budget(plan.symbol));
    if (cached === undefined) return undefined;
    const decision = this.fromCache(plan, cached);
    return decision.reason !== 'within_budget' ? decision : undefined;
  }

  /**
   * When Redis itself cannot be read, a cached hash still within `staleAfterMs` keeps being
   * enforced; a stale, invalid or missing one leaves the Redis failure as the decision.
   */
  unreachable(plan: PermitRequest, failure: GateDecision): GateDecision {
    if (!REDIS_CAUSES.has(failure.reason as FailOpenReason)) return failure;
    const fields = this.cache.lastKnown(this.keys.budget(plan.symbol));
    if (fields === undefined) return failure;
    const decision = this.fromCache(plan, fields);
    return decision.failOpen ? failure : decision;
  }

  private fromCache(plan: PermitRequest, fields: Record<string, string>): GateDecision {
    const decision = decideFromBudgetFields(plan, fields, this.now(), this.policy);
    decision.source = 'cache';
    this.decisionLog?.noteFields(decision, fields);
    return decision;
  }
}
