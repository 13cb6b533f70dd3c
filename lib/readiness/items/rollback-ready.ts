import type { ReadinessContext } from '../context';
import { leaderCycles, type ReadinessFacts } from '../facts';
import type { ReadinessItem } from '../report';

/** Rollback plan ready: no run-time override, and the leader runs the mode of this configuration's env file. */
export function rollbackReady(facts: ReadinessFacts, ctx: ReadinessContext): ReadinessItem {
  const last = [...leaderCycles(facts)].reverse().find((c) => c.result !== 'failed');
  const details: string[] = [];
  const overrideSet = facts.modeOverride !== null;
  if (overrideSet) details.push(`the run-time override quantum:p28:mode is set (${JSON.stringify(facts.modeOverride)}): clear it (p28-worker mode --clear) so the env file is the one truth`);
  if (last && last.modeSource !== 'env') details.push(`the leader's last cycle took its mode from ${last.modeSource}`);
  const agrees = last === undefined || last.mode === ctx.configuredMode;
  if (!agrees) details.push(`this configuration says P28_MODE=${ctx.configuredMode} but the leader's last cycle ran ${last?.mode}: is this the worker's env file?`);
  if (!last) details.push('no completed leader cycle in the window to confirm the mode the worker runs');
  details.push('rollback: set P28_MODE=shadow in the env file and restart (a starting worker clears any override); emergency: stop the worker and every gate fails open within BUDGET_HASH_TTL_SEC');
  return {
    id: 'rollback_ready',
    title: 'Rollback plan ready',
    pass: !overrideSet && last !== undefined && last.modeSource === 'env' && agrees,
    summary: `mode ${last?.mode ?? 'unknown'} from ${last?.modeSource ?? 'unknown'}, override ${overrideSet ? 'set' : 'none'}, P28_MODE=${ctx.configuredMode}`,
    figures: { mode: last?.mode ?? null, modeSource: last?.modeSource ?? null, override: facts.modeOverride, configuredMode: ctx.configuredMode },
    thresholds: { modeSource: 'env', override: 'none' },
    details,
    listed: [],
  };
}
