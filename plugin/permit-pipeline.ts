import { Registry } from 'prom-client';
import type { DependencyContainer } from 'tsyringe';
import { silentLogger, type Logger } from '../lib/logger';
import type { GateDecision, PermitGate, PermitRequest } from '../types/permit';
import { GovernorMetrics } from './governor-metrics';
import { PERMIT_GATE } from './tokens';

export interface PermitPipelineOptions {
  /** Registry for `quantum_govern_*` metrics. Default: a private one (`pipeline.registry`). */
  registry?: Registry;
  /** pino logger for gates that throw. Default: silent. */
  logger?: Logger;
}

/** One gate's part in a pipeline run: its decision, or the error it threw (then `decision` is null). */
export interface GateOutcome {
  gate: string;
  decision: GateDecision | null;
  error?: string;
}

export interface PermitResult {
  /** False when a gate blocked the plan. */
  allow: boolean;
  /** The gates that ran, in order; gates after a block are not run. */
  decisions: GateOutcome[];
  /** Name of the gate that blocked the plan. */
  blockedBy?: string;
}

/**
 * Runs permit gates in order; the first block wins and the gates after it are not evaluated; the
 * gates before it that allowed the plan are asked to `release` what they hold for it. A
 * gate that throws or rejects is logged, counted in `quantum_govern_gate_error_total{gate}` and
 * passed over as a fail-open allow: one broken gate never halts the pipeline or blocks a plan.
 * Emits `quantum_govern_allow_total{symbol}` and `quantum_govern_block_total{symbol,reason}`.
 */
export class PermitPipeline {
  readonly registry: Registry;
  private readonly metrics: GovernorMetrics;
  private readonly logger: Logger;

  constructor(
    readonly gates: readonly PermitGate[],
    options: PermitPipelineOptions = {},
  ) {
    this.registry = options.registry ?? new Registry();
    this.metrics = new GovernorMetrics(this.registry);
    this.logger = options.logger ?? silentLogger;
  }

  /** A pipeline of every gate registered under `PERMIT_GATE` (in registration order); empty if none. */
  static fromContainer(container: DependencyContainer, options: PermitPipelineOptions = {}): PermitPipeline {
    const gates = container.isRegistered(PERMIT_GATE, true) ? container.resolveAll(PERMIT_GATE) : [];
    return new PermitPipeline(gates, options);
  }

  async evaluate(req: PermitRequest): Promise<PermitResult> {
    const decisions: GateOutcome[] = [];
    for (const gate of this.gates) {
      let decision: GateDecision;
      try {
        decision = await gate.evaluate(req);
        if (typeof decision !== 'object' || decision === null || typeof decision.allow !== 'boolean') {
          throw new TypeError(`gate ${gate.name} returned no decision`);
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.metrics.gateError(gate.name);
        this.logger.error({ gate: gate.name, planId: req?.planId, symbol: req?.symbol, err: message }, 'permit gate threw; passing over it');
        decisions.push({ gate: gate.name, decision: null, error: message });
        continue;
      }
      decisions.push({ gate: gate.name, decision });
      if (!decision.allow) {
        this.metrics.blocked(req?.symbol, decision.reason);
        await this.releaseEarlier(req, decisions);
        return { allow: false, decisions, blockedBy: gate.name };
      }
    }
    this.metrics.allowed(req?.symbol);
    return { allow: true, decisions };
  }

  /**
   * A plan a later gate blocked will not be executed: every earlier gate that allowed it and holds
   * something for it (the budget gate's reservation of headroom) frees it now, instead of keeping
   * it until it lapses. A release that fails is logged; the hold then lapses on its own.
   */
  private async releaseEarlier(req: PermitRequest, decisions: readonly GateOutcome[]): Promise<void> {
    const planId = req?.planId;
    const symbol = req?.symbol;
    if (typeof planId !== 'string' || typeof symbol !== 'string') return;
    const releases: Promise<unknown>[] = [];
    for (let i = 0; i < decisions.length - 1; i++) {
      const gate = this.gates[i];
      if (!decisions[i]!.decision?.allow || typeof gate?.release !== 'function') continue;
      releases.push(
        Promise.resolve()
          .then(() => gate.release!(planId, symbol))
          .catch((error: unknown) => {
            this.logger.warn({ gate: gate.name, planId, symbol, err: error instanceof Error ? error.message : String(error) }, 'permit gate could not release a blocked plan');
          }),
      );
    }
    await Promise.all(releases);
  }
}
