import type { Logger } from '../lib/logger';
import { requestIdentity, type FailOpenReason, type GateDecision } from '../types/permit';
import { REDIS_CAUSES } from './guarded-read';

/**
 * The gate's log lines about its decisions. Only fail-opens, blocks, shadow blocks and the first
 * decision after a fail-open are looked at: a fail-open is logged when its reason changes, the
 * first decision read from a hash after Redis failed says so once, and blocks and shadow blocks
 * are logged one by one.
 */
export class DecisionReport {
  private lastFailOpen: FailOpenReason | null = null;

  constructor(private readonly logger: Logger) {}

  note(req: unknown, decision: GateDecision): void {
    if (decision.failOpen || decision.wouldBlock || this.lastFailOpen !== null) this.report(req, decision);
  }

  private report(req: unknown, decision: GateDecision): void {
    if (decision.failOpen) {
      if (decision.reason === this.lastFailOpen) return;
      this.logger.warn(
        { ...requestIdentity(req), ...decision, previous: this.lastFailOpen },
        `budget gate failing open: ${decision.reason}`,
      );
      this.lastFailOpen = decision.reason as FailOpenReason;
      return;
    }
    if (this.lastFailOpen !== null && decision.mode !== null && REDIS_CAUSES.has(this.lastFailOpen)) {
      this.logger.info({ ...requestIdentity(req), previous: this.lastFailOpen }, 'budget gate reading budgets again');
      this.lastFailOpen = null;
    }
    // Blocks are logged one by one; the level check keeps the hot path free of the log object's
    // allocation when the host has turned these lines off.
    if (!decision.allow) {
      if (this.logger.isLevelEnabled('warn')) this.logger.warn({ ...requestIdentity(req), ...decision }, 'budget gate blocked a plan');
    } else if (decision.wouldBlock && this.logger.isLevelEnabled('info')) {
      this.logger.info({ ...requestIdentity(req), ...decision }, 'budget gate would block a plan (shadow)');
    }
  }
}
