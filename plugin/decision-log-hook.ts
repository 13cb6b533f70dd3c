import type { Registry } from 'prom-client';
import type { Logger } from '../lib/logger';
import type { RedisClient } from '../lib/redis/client';
import type { RedisKeys } from '../lib/redis/keys';
import type { GateDecision, PermitRequest } from '../types/permit';
import type { DecisionPolicy } from './decide';
import { DecisionLog } from './decision-log';
import { noteDecisionInputs, ReplyInputs } from './decision-log-encoding';
import type { ResolvedGateOptions } from './gate-options';
import type { KnownFields } from './known-fields-memo';
import { PLAN_REPLY_LENGTH } from './plan-script';

/**
 * What the gate hands to its decision log (option `decisionLogMaxLen`): the budget hash fields
 * each decision was judged on (from the script's reply, or from the local cache), then every
 * finished decision with the time on the gate's clock and the `forceShadow` switch as it was.
 */
export class DecisionLogHook {
  private constructor(
    private readonly log: DecisionLog,
    private readonly now: () => number,
    private readonly policy: Readonly<DecisionPolicy>,
  ) {}

  /** The hook of a gate with these options, or undefined when its decision log is off (`decisionLogMaxLen` 0). */
  static create(
    o: ResolvedGateOptions,
    gate: { client: RedisClient; keys: RedisKeys; policy: DecisionPolicy; now: () => number; registry: Registry; logger: Logger },
  ): DecisionLogHook | undefined {
    if (o.decisionLogMaxLen <= 0) return undefined;
    const log = new DecisionLog({
      client: gate.client,
      streamKey: gate.keys.decisionLogStream,
      maxLen: o.decisionLogMaxLen,
      instanceId: o.instanceId,
      via: o.via,
      policy: gate.policy,
      registry: gate.registry,
      logger: gate.logger,
    });
    return new DecisionLogHook(log, gate.now, gate.policy);
  }

  /**
   * The fields a decision was judged on: `known`, the values the gate holds for it (`fields:
   * 'changed'` in `guarded-read.ts`), else those the script appended to its reply when asked to.
   */
  noteReply(decision: GateDecision, reply: Array<string | null>, known?: KnownFields): void {
    // The values are named when the entry is packed, off the decision's path.
    if (known !== undefined) noteDecisionInputs(decision, new ReplyInputs(known.values, 0));
    else if (reply.length > PLAN_REPLY_LENGTH) noteDecisionInputs(decision, new ReplyInputs(reply, PLAN_REPLY_LENGTH));
  }

  /** The cached hash a decision was taken from. */
  noteFields(decision: GateDecision, fields: Record<string, string>): void {
    noteDecisionInputs(decision, fields);
  }

  /** Queues a finished decision; never waits and never changes it. `plan`: the request as the gate read it. */
  append(plan: PermitRequest | undefined, req: unknown, decision: GateDecision): void {
    this.log.append(req, decision, this.now(), this.policy.forceShadow, plan);
  }

  /** Closes the log, waiting at most `waitMs` for what is queued to be written. */
  close(waitMs: number): Promise<void> {
    return this.log.close(waitMs);
  }
}
