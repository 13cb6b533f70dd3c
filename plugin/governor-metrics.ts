import type { Counter, Registry } from 'prom-client';
import { normalizeSymbol } from '../types/symbol';
import { counter, metricsOn } from '../lib/registry-metrics';

/** The label every malformed symbol is counted under, so a bad caller cannot grow the label set. */
export const INVALID_SYMBOL_LABEL = 'invalid';

/**
 * The permit pipeline's metrics, declared once: `GovernorMetrics` creates them, and docs/metrics.md's
 * pipeline table is generated from this table (`npm run docs:gen`).
 */
export const GOVERNOR_METRICS = {
  allows: counter({
    name: 'quantum_govern_allow_total',
    help: 'Permits issued by the Governor permit pipeline, by symbol.',
    labelNames: ['symbol'],
  }),
  blocks: counter({
    name: 'quantum_govern_block_total',
    help: 'Permits refused by the Governor permit pipeline, by symbol and the blocking reason.',
    labelNames: ['symbol', 'reason'],
  }),
  gateErrors: counter({
    name: 'quantum_govern_gate_error_total',
    help: 'Gate evaluations that threw and were treated as a fail-open allow, by gate.',
    labelNames: ['gate'],
  }),
};

/**
 * The Governor's permit counters, as the guide names them: `quantum_govern_allow_total{symbol}`,
 * `quantum_govern_block_total{symbol,reason}`, plus `quantum_govern_gate_error_total{gate}` for
 * gates that threw instead of deciding.
 */
export class GovernorMetrics {
  private readonly allows: Counter<'symbol'>;
  private readonly blocks: Counter<'symbol' | 'reason'>;
  private readonly gateErrors: Counter<'gate'>;

  constructor(readonly registry: Registry) {
    const m = metricsOn(registry, GOVERNOR_METRICS);
    this.allows = m.allows;
    this.blocks = m.blocks;
    this.gateErrors = m.gateErrors;
  }

  allowed(symbol: unknown): void {
    this.allows.labels(symbolLabel(symbol)).inc();
  }

  blocked(symbol: unknown, reason: string): void {
    this.blocks.labels(symbolLabel(symbol), reason).inc();
  }

  gateError(gate: string): void {
    this.gateErrors.labels(gate).inc();
  }
}

function symbolLabel(symbol: unknown): string {
  return normalizeSymbol(symbol) ?? INVALID_SYMBOL_LABEL;
}
