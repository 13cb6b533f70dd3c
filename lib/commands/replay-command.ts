import type { WorkerConfig } from '../config';
import type { BudgetParams } from '../engine/compute-budget';
import type { RedisClient } from '../redis/client';
import { RedisKeys } from '../redis/keys';
import { forEachDecision } from '../readiness/read-history';
import { columns } from '../readiness/render';
import { ReplayTally, type ReplaySummary } from '../readiness/replay';
import { parseReplaySettings, type ReplayParams } from '../readiness/replay-params';
import { formatDuration, parseWindow } from '../readiness/window';

export interface ReplayCommandOptions {
  window: string;
  set: string[];
  json?: boolean;
}

const ENV_NAMES: Record<keyof BudgetParams, string> = {
  baseRiskPct: 'BASE_RISK_PCT',
  alphaHeat: 'ALPHA_HEAT',
  betaCluster: 'BETA_CLUSTER',
  gammaVol: 'GAMMA_VOL',
  minBudgetUsd: 'MIN_BUDGET_K',
  maxBudgetUsd: 'MAX_BUDGET_K',
};

const usd = (n: number): string => n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** The candidate parameters in words: what changes from the configuration. */
export function describeCandidate(candidate: ReplayParams, configured: BudgetParams): string {
  const changed = (Object.keys(ENV_NAMES) as (keyof BudgetParams)[])
    .filter((k) => candidate.budget[k] !== configured[k])
    .map((k) => `${ENV_NAMES[k]}=${candidate.budget[k]} (configured ${configured[k]})`);
  if (candidate.violationWindowMs !== undefined) changed.push(`VIOLATION_WINDOW_MS=${candidate.violationWindowMs}`);
  if (candidate.staleAfterMs !== undefined) changed.push(`STALE_AFTER_MS=${candidate.staleAfterMs}`);
  return changed.length > 0 ? changed.join(', ') : 'the configured parameters (no --set)';
}

/** The replay summary for a person: the counts and notional, the symbols most affected, the fidelity check. */
export function renderReplay(summary: ReplaySummary, context: { windowMs: number; candidate: string; seconds: number }): string {
  const unknown = (n: number) => (n > 0 ? ` (${n} of unknown size)` : '');
  const skipped = Object.entries(summary.notRejudged);
  const lines = [
    `replay over ${formatDuration(context.windowMs)}: ${summary.decisions} logged decisions, ${summary.rejudged} judged again under ${context.candidate}, in ${context.seconds.toFixed(1)} s`,
    '',
    columns(
      ['', 'DECISIONS', 'PLAN NOTIONAL USD'],
      [
        ['newly blocked', String(summary.newlyBlocked.count), usd(summary.newlyBlocked.notionalUsd) + unknown(summary.newlyBlocked.unknownNotional)],
        ['newly allowed', String(summary.newlyAllowed.count), usd(summary.newlyAllowed.notionalUsd) + unknown(summary.newlyAllowed.unknownNotional)],
        ['unchanged', String(summary.unchanged), ''],
        ['not judged again', String(skipped.reduce((n, [, c]) => n + c, 0)), skipped.length > 0 ? `no hash read: ${skipped.map(([r, c]) => `${r} ${c}`).join(', ')}` : ''],
      ],
    ).trimEnd(),
    '',
  ];
  if (summary.newlyFailOpen + summary.noLongerFailOpen > 0) lines.push(`fail-open: ${summary.newlyFailOpen} newly, ${summary.noLongerFailOpen} no longer`, '');
  if (summary.symbols.length > 0) {
    lines.push(
      'symbols most affected',
      columns(
        ['SYMBOL', 'NEWLY_BLOCKED', 'USD', 'NEWLY_ALLOWED', 'USD'],
        summary.symbols.map((s) => [s.symbol, String(s.newlyBlocked), usd(s.newlyBlockedUsd), String(s.newlyAllowed), usd(s.newlyAllowedUsd)]),
      ).trimEnd(),
      '',
    );
  }
  lines.push(
    summary.baselineDiffers === 0
      ? 'fidelity: judged again under the configured parameters, every decision comes out as logged'
      : `fidelity: judged again under the configured parameters, ${summary.baselineDiffers} decisions do not come out as logged (parameters changed in the window, or this is not the worker's env file): ${summary.baselineExamples
          .map((e) => `${e.id} ${e.symbol} ${e.logged} -> ${e.replayed}`)
          .join('; ')}`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * `p28-worker replay`: the window's logged decisions judged again under candidate parameters.
 * Throws `ReplayParamError` / `WindowError` for bad settings (usage errors); reads only.
 */
export async function replayCommand(client: RedisClient, config: WorkerConfig, options: ReplayCommandOptions, write: (text: string) => void, nowMs = Date.now()): Promise<ReplaySummary> {
  const windowMs = parseWindow(options.window);
  const candidate = parseReplaySettings(options.set, config.budget);
  const started = performance.now();
  const tally = new ReplayTally(candidate, config.budget);
  await forEachDecision(client, new RedisKeys(config.keyPrefix), nowMs - windowMs, nowMs, (d) => tally.add(d));
  const summary = tally.result();
  const seconds = (performance.now() - started) / 1000;
  if (options.json) write(`${JSON.stringify({ window: { seconds: windowMs / 1000 }, candidate: describeCandidate(candidate, config.budget), ...summary }, null, 2)}\n`);
  else write(renderReplay(summary, { windowMs, candidate: describeCandidate(candidate, config.budget), seconds }));
  return summary;
}
