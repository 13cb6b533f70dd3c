import { Registry, type Counter, type Gauge, type Histogram } from 'prom-client';
import { getHeapStatistics } from 'node:v8';
import { counter, gauge, histogram, metricOn, metricsOn } from '../registry-metrics';
import { MODES, type Mode } from '../../types/mode';
import type { ModeSource } from './mode-switch';
import type { PortfolioSource } from './sources/portfolio-state-source';
import { CYCLE_RESULTS, STALE_INPUT_TYPES, type CycleResult, type StaleInputType } from './cycle-report';

/** What one symbol's budget came to in a cycle, as the metrics need it. */
export interface SymbolBudgetSample {
  symbol: string;
  budgetUsd: number;
  stressFactor: number;
  /** The mode written into this symbol's hash (canary-aware). */
  mode: Mode;
  overBudget: boolean;
}

/**
 * The worker's metrics, declared once: `WorkerMetrics` creates them, and docs/metrics.md's worker
 * table is generated from this table (`npm run docs:gen`). Add a metric here, then re-run it.
 */
export const WORKER_METRICS = {
  enforceMode: gauge({
    name: 'p28_enforce_mode',
    help: 'Effective mode of this replica: 1 = enforce (over-budget increases are blocked by the gate), 0 = shadow (only reported). Follows the run-time override key, else P28_MODE.',
  }),
  redisWriteFail: counter({
    name: 'p28_redis_write_fail_total',
    help: 'Cycles that could not publish to Redis: the write batch failed for at least one key, or Redis was unreachable or timed out so nothing could be written. The next cycle rewrites every budget.',
  }),
  budgetComputed: counter({
    name: 'p28_budget_computed_total',
    help: 'Budgets computed, per symbol (one per symbol per leader cycle with a usable portfolio state).',
    labelNames: ['symbol'],
  }),
  budgetValueUsd: gauge({
    name: 'p28_budget_value_usd',
    help: 'Latest budget in USD per symbol. The series disappears when the symbol no longer gets a budget (snapshot gone or invalid) or this replica stops being the leader.',
    labelNames: ['symbol'],
  }),
  stressFactor: gauge({
    name: 'p28_stress_factor',
    help: 'Latest composite stress in [0,1] per symbol (ALPHA_HEAT*heat + BETA_CLUSTER*cluster_stress + GAMMA_VOL*vol_regime, clamped). Removed with the symbol like p28_budget_value_usd.',
    labelNames: ['symbol'],
  }),
  budgetBlocks: counter({
    name: 'p28_budget_blocks_total',
    help: 'Cycles in which the symbol was over budget with mode=enforce in its hash, so the gate blocks plans that increase it.',
    labelNames: ['symbol'],
  }),
  budgetAllow: counter({
    name: 'p28_budget_allow_total',
    help: 'Cycles in which the symbol was within budget (position notional <= budget_usd), in either mode.',
    labelNames: ['symbol'],
  }),
  staleInput: counter({
    name: 'p28_stale_input_total',
    help: 'Inputs that were missing, stale or invalid and replaced by their fallback, once per input per cycle (per symbol for the per-symbol inputs; every series exists from the start): portfolio_state (last-known-good used, or no budgets written), heat (last known value, else 0), cluster_stress (invalid stress hash or cluster_id: the last good stress, else 0, or the default cluster used), vol_regime (market state missing, stale or without a usable vol_regime or sigma: NORMAL 0.33 used), position_snapshot (position key naming no symbol: skipped), position (a position unknown, never flat: stale, missing from an incomplete feed, or unusable numbers; budget written with position_status stale, unknown or invalid), mode_override (invalid override: P28_MODE used).',
    labelNames: ['input_type'],
    labelValues: { input_type: STALE_INPUT_TYPES },
  }),
  budgetViolations: counter({
    name: 'p28_budget_violations_total',
    help: 'Leader cycles in which the symbol was over budget (position notional > budget_usd), per symbol and the mode written; the violation stream gets an entry only on a change or every VIOLATION_REPUBLISH_SEC.',
    labelNames: ['symbol', 'mode'],
    labelValues: { mode: MODES },
  }),
  cycleDuration: histogram({
    name: 'p28_cycle_duration_seconds',
    help: 'Duration of a worker cycle in seconds, from the lease check to the last write, in every role and outcome.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  }),
  cycles: counter({
    name: 'p28_cycles_total',
    help: 'Worker cycles by result: ok (budgets written), skipped (no usable portfolio state, nothing written), failed (a Redis or unexpected error), standby (another replica holds the lease).',
    labelNames: ['result'],
    labelValues: { result: CYCLE_RESULTS },
  }),
  lastSuccess: gauge({
    name: 'p28_last_success_timestamp_seconds',
    help: 'Epoch seconds at which the last cycle ended ok (leader: budgets written) or standby (lease checked); 0 until then.',
  }),
  isLeader: gauge({
    name: 'p28_is_leader',
    help: '1 while this replica holds the worker lease and computes budgets, 0 while it stands by.',
  }),
  activeSymbols: gauge({
    name: 'p28_active_symbols',
    help: 'Symbols with an open position (position_amt != 0) in the last leader cycle; 0 on a stand-by.',
  }),
  portfolioHeat: gauge({
    name: 'p28_portfolio_heat',
    help: 'Portfolio heat in [0,1] used by the last leader cycle (live from P2.6, its last known value, or 0).',
  }),
  budgetsWritten: gauge({
    name: 'p28_budgets_written_timestamp_seconds',
    help: 'Epoch seconds at which the leader (any replica) last wrote budgets, from the heartbeat hash every replica reads; a stalled leader shows here on every replica. 0 until a heartbeat is seen.',
  }),
  modeSource: gauge({
    name: 'p28_mode_source',
    help: 'Where the effective mode comes from: 1 on source="env" (P28_MODE) or source="override" (the run-time key quantum:p28:mode), 0 on the other.',
    labelNames: ['source'],
    labelValues: { source: ['env', 'override'] },
  }),
  symbolsOverCap: counter({
    name: 'p28_symbols_over_cap_total',
    help: 'Symbols left without a budget because the symbol universe exceeded P28_MAX_SYMBOLS, once per symbol per leader cycle.',
  }),
  // The upstream service's two counters, kept by name so its dashboards and alerts carry over.
  lkgCacheUsed: counter({
    name: 'p28_lkg_cache_used_total',
    help: 'Leader cycles that computed budgets from the last-known-good portfolio state because the current one was missing, invalid or older than STALE_SEC. The upstream service\'s name.',
  }),
  cycleHeapUsed: gauge({
    name: 'p28_cycle_heap_used_bytes',
    help: 'V8 heap in use by the thread that runs the budget cycle, read when scraped: the cycle thread (P28_CYCLE_THREAD=1), whose heap nodejs_heap_size_used_bytes (the main thread) does not show; in-process, the main thread\'s.',
  }),
  portfolioTooOld: counter({
    name: 'p28_portfolio_too_old_total',
    help: 'Leader cycles with no usable portfolio state at all (neither current nor a last-known-good younger than MAX_LKG_AGE_SEC): no budgets written. The upstream service\'s name.',
  }),
};

/**
 * The worker's Prometheus metrics, in a `Registry` of their own (never the global one), so that
 * several workers, tests and host processes can each keep theirs. Every series that has a fixed
 * label set (`input_type`, `result`) is created at zero, so `rate()` alerts work from the start.
 */
export class WorkerMetrics {
  readonly registry: Registry;

  readonly enforceMode: Gauge;
  readonly redisWriteFail: Counter;
  readonly budgetComputed: Counter<'symbol'>;
  readonly budgetValueUsd: Gauge<'symbol'>;
  readonly stressFactor: Gauge<'symbol'>;
  readonly budgetBlocks: Counter<'symbol'>;
  readonly budgetAllow: Counter<'symbol'>;
  readonly staleInput: Counter<'input_type'>;
  readonly budgetViolations: Counter<'symbol' | 'mode'>;
  readonly cycleDuration: Histogram;
  readonly cycles: Counter<'result'>;
  readonly lastSuccess: Gauge;
  readonly isLeader: Gauge;
  readonly activeSymbols: Gauge;
  readonly portfolioHeat: Gauge;
  readonly budgetsWritten: Gauge;
  readonly modeSource: Gauge<'source'>;
  readonly symbolsOverCap: Counter;
  readonly lkgCacheUsed: Counter;
  readonly portfolioTooOld: Counter;
  readonly cycleHeapUsed: Gauge;

  /** Symbols that currently have per-symbol gauge series. */
  private readonly gaugedSymbols = new Set<string>();
  /** Symbols that have any per-symbol series (counters included). */
  private readonly countedSymbols = new Set<string>();

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const { cycleHeapUsed, ...declared } = WORKER_METRICS;
    const m = metricsOn(registry, declared);
    // Read in the isolate that owns this registry: the cycle thread's, when the cycle runs in one.
    this.cycleHeapUsed = metricOn(registry, cycleHeapUsed, function () {
      this.set(getHeapStatistics().used_heap_size);
    });
    this.enforceMode = m.enforceMode;
    this.redisWriteFail = m.redisWriteFail;
    this.budgetComputed = m.budgetComputed;
    this.budgetValueUsd = m.budgetValueUsd;
    this.stressFactor = m.stressFactor;
    this.budgetBlocks = m.budgetBlocks;
    this.budgetAllow = m.budgetAllow;
    this.staleInput = m.staleInput;
    this.budgetViolations = m.budgetViolations;
    this.cycleDuration = m.cycleDuration;
    this.cycles = m.cycles;
    this.lastSuccess = m.lastSuccess;
    this.isLeader = m.isLeader;
    this.activeSymbols = m.activeSymbols;
    this.portfolioHeat = m.portfolioHeat;
    this.budgetsWritten = m.budgetsWritten;
    this.modeSource = m.modeSource;
    this.symbolsOverCap = m.symbolsOverCap;
    this.lkgCacheUsed = m.lkgCacheUsed;
    this.portfolioTooOld = m.portfolioTooOld;
    this.setModeSource('env');
    for (const inputType of STALE_INPUT_TYPES) this.staleInput.labels(inputType).inc(0);
    for (const result of CYCLE_RESULTS) this.cycles.labels(result).inc(0);
  }

  /** Sets `p28_enforce_mode` from an effective mode. */
  setMode(mode: Mode): void {
    this.enforceMode.set(mode === 'enforce' ? 1 : 0);
  }

  /** Sets `p28_mode_source`: 1 on the source in effect, 0 on the other. */
  setModeSource(source: ModeSource): void {
    this.modeSource.labels('env').set(source === 'env' ? 1 : 0);
    this.modeSource.labels('override').set(source === 'override' ? 1 : 0);
  }

  countStale(inputType: StaleInputType, by = 1): void {
    if (by > 0) this.staleInput.labels(inputType).inc(by);
  }

  /**
   * Records one leader cycle's budgets: counters per symbol, and the per-symbol gauges replaced by
   * this cycle's set, so a symbol that is gone stops being exported instead of showing its last value.
   * Every per-symbol series (counters too) of a symbol that left the universe is removed, so the
   * series count follows the universe, not its history (symbols come and go by the thousand).
   */
  recordBudgets(samples: readonly SymbolBudgetSample[], activeSymbols: number): void {
    const seen = new Set<string>();
    for (const s of samples) {
      seen.add(s.symbol);
      this.budgetComputed.labels(s.symbol).inc();
      this.budgetValueUsd.labels(s.symbol).set(s.budgetUsd);
      this.stressFactor.labels(s.symbol).set(s.stressFactor);
      if (!s.overBudget) this.budgetAllow.labels(s.symbol).inc();
      else {
        this.budgetViolations.labels(s.symbol, s.mode).inc();
        if (s.mode === 'enforce') this.budgetBlocks.labels(s.symbol).inc();
      }
    }
    this.dropSymbolGauges((symbol) => !seen.has(symbol));
    for (const symbol of this.countedSymbols) if (!seen.has(symbol)) this.dropSymbolCounters(symbol);
    for (const symbol of seen) {
      this.gaugedSymbols.add(symbol);
      this.countedSymbols.add(symbol);
    }
    this.activeSymbols.set(activeSymbols);
  }

  /** Counts a leader cycle's portfolio state source in the upstream service's two counters. */
  recordPortfolioSource(source: PortfolioSource): void {
    if (source === 'lkg') this.lkgCacheUsed.inc();
    else if (source === 'none') this.portfolioTooOld.inc();
  }

  /** Marks this replica leader or stand-by; a stand-by exports no per-symbol gauges. */
  setLeader(leader: boolean): void {
    this.isLeader.set(leader ? 1 : 0);
    if (!leader) {
      this.dropSymbolGauges(() => true);
      this.activeSymbols.set(0);
    }
  }

  recordCycle(result: CycleResult, durationSec: number, endedAtMs: number): void {
    this.cycles.labels(result).inc();
    this.cycleDuration.observe(durationSec);
    if (result === 'ok' || result === 'standby') this.lastSuccess.set(endedAtMs / 1000);
  }

  private dropSymbolCounters(symbol: string): void {
    this.budgetComputed.remove(symbol);
    this.budgetAllow.remove(symbol);
    this.budgetBlocks.remove(symbol);
    for (const mode of MODES) this.budgetViolations.remove(symbol, mode);
    this.countedSymbols.delete(symbol);
  }

  private dropSymbolGauges(drop: (symbol: string) => boolean): void {
    for (const symbol of [...this.gaugedSymbols]) {
      if (!drop(symbol)) continue;
      this.budgetValueUsd.remove(symbol);
      this.stressFactor.remove(symbol);
      this.gaugedSymbols.delete(symbol);
    }
  }
}
