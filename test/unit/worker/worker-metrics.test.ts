import { expect } from 'chai';
import { register as globalRegistry } from 'prom-client';
import { STALE_INPUT_TYPES } from '../../../lib/worker/cycle-report';
import { WorkerMetrics } from '../../../lib/worker/worker-metrics';
import { metricLabels, metricValue } from '../../support/metric-values';

describe('WorkerMetrics', () => {
  it('registers in a registry of its own, never the global one, so two instances coexist', async () => {
    const a = new WorkerMetrics();
    const b = new WorkerMetrics();
    a.setMode('enforce');
    expect(a.registry).to.not.equal(b.registry);
    expect(globalRegistry.getSingleMetric('p28_enforce_mode')).to.equal(undefined);
    expect(await metricValue(a.registry, 'p28_enforce_mode')).to.equal(1);
    expect(await metricValue(b.registry, 'p28_enforce_mode')).to.equal(0);
  });

  it('exports the guide metrics and the operator metrics by their contract names', async () => {
    const text = await new WorkerMetrics().registry.metrics();
    for (const name of [
      'p28_enforce_mode',
      'p28_redis_write_fail_total',
      'p28_budget_computed_total',
      'p28_budget_value_usd',
      'p28_stress_factor',
      'p28_budget_blocks_total',
      'p28_budget_allow_total',
      'p28_stale_input_total',
      'p28_budget_violations_total',
      'p28_cycle_duration_seconds',
      'p28_cycles_total',
      'p28_last_success_timestamp_seconds',
      'p28_is_leader',
      'p28_active_symbols',
      'p28_lkg_cache_used_total',
      'p28_portfolio_too_old_total',
    ]) {
      expect(text).to.match(new RegExp(`^# HELP ${name} \\S.{20,}$`, 'm'));
    }
    expect(text).to.match(/^# TYPE p28_cycle_duration_seconds histogram$/m);
  });

  it('creates every stale-input and cycle-result series at zero', async () => {
    const metrics = new WorkerMetrics();
    const stale = await metricLabels(metrics.registry, 'p28_stale_input_total');
    expect(stale.map((l) => l.input_type)).to.have.members([...STALE_INPUT_TYPES]);
    const cycles = await metricLabels(metrics.registry, 'p28_cycles_total');
    expect(cycles.map((l) => l.result)).to.have.members(['ok', 'skipped', 'failed', 'standby']);
  });

  it('counts a block only for an over-budget symbol under enforce, and an allow for a symbol within budget', async () => {
    const metrics = new WorkerMetrics();
    metrics.recordBudgets(
      [
        { symbol: 'BTCUSDT', budgetUsd: 1348, stressFactor: 0.326, mode: 'enforce', overBudget: true },
        { symbol: 'ETHUSDT', budgetUsd: 1348, stressFactor: 0.326, mode: 'shadow', overBudget: true },
        { symbol: 'SOLUSDT', budgetUsd: 1348, stressFactor: 0.326, mode: 'enforce', overBudget: false },
      ],
      3,
    );
    const r = metrics.registry;
    expect(await metricValue(r, 'p28_budget_blocks_total', { symbol: 'BTCUSDT' })).to.equal(1);
    expect(await metricValue(r, 'p28_budget_blocks_total', { symbol: 'ETHUSDT' })).to.equal(0);
    expect(await metricValue(r, 'p28_budget_allow_total', { symbol: 'SOLUSDT' })).to.equal(1);
    expect(await metricValue(r, 'p28_budget_allow_total', { symbol: 'ETHUSDT' })).to.equal(0);
    expect(await metricValue(r, 'p28_budget_violations_total', { symbol: 'ETHUSDT', mode: 'shadow' })).to.equal(1);
    expect(await metricValue(r, 'p28_budget_violations_total', { symbol: 'BTCUSDT', mode: 'enforce' })).to.equal(1);
    expect(await metricValue(r, 'p28_budget_computed_total', { symbol: 'SOLUSDT' })).to.equal(1);
    expect(await metricValue(r, 'p28_active_symbols')).to.equal(3);
  });

  it('removes the per-symbol gauges of a symbol that disappears', async () => {
    const metrics = new WorkerMetrics();
    metrics.recordBudgets([{ symbol: 'BTCUSDT', budgetUsd: 1348, stressFactor: 0.326, mode: 'shadow', overBudget: false }], 1);
    metrics.recordBudgets([{ symbol: 'ETHUSDT', budgetUsd: 1748, stressFactor: 0.126, mode: 'shadow', overBudget: false }], 1);
    expect((await metricLabels(metrics.registry, 'p28_budget_value_usd')).map((l) => l.symbol)).to.deep.equal(['ETHUSDT']);
    expect((await metricLabels(metrics.registry, 'p28_stress_factor')).map((l) => l.symbol)).to.deep.equal(['ETHUSDT']);
    expect(await metricValue(metrics.registry, 'p28_budget_value_usd', { symbol: 'ETHUSDT' })).to.equal(1748);
  });

  it('drops per-symbol gauges and zeroes p28_active_symbols when the replica stands by', async () => {
    const metrics = new WorkerMetrics();
    metrics.setLeader(true);
    metrics.recordBudgets([{ symbol: 'BTCUSDT', budgetUsd: 1348, stressFactor: 0.326, mode: 'shadow', overBudget: false }], 1);
    metrics.setLeader(false);
    expect(await metricLabels(metrics.registry, 'p28_budget_value_usd')).to.deep.equal([]);
    expect(await metricValue(metrics.registry, 'p28_active_symbols')).to.equal(0);
    expect(await metricValue(metrics.registry, 'p28_is_leader')).to.equal(0);
  });

  it('sets the last success time only for ok and standby cycles', async () => {
    const metrics = new WorkerMetrics();
    metrics.recordCycle('failed', 0.01, 1_000_000);
    expect(await metricValue(metrics.registry, 'p28_last_success_timestamp_seconds')).to.equal(0);
    metrics.recordCycle('skipped', 0.01, 2_000_000);
    expect(await metricValue(metrics.registry, 'p28_last_success_timestamp_seconds')).to.equal(0);
    metrics.recordCycle('ok', 0.01, 3_000_000);
    expect(await metricValue(metrics.registry, 'p28_last_success_timestamp_seconds')).to.equal(3000);
    expect(await metricValue(metrics.registry, 'p28_cycles_total', { result: 'failed' })).to.equal(1);
    expect(await metricValue(metrics.registry, 'p28_cycle_duration_seconds_count')).to.equal(3);
  });
});
