import { ClusterStressHash } from '../../../types/inputs';
import { formatIssues } from '../../../types/wire-number';
import { command, type BatchOutcome, type RedisCommand } from '../../redis/command-batch';
import type { RedisKeys } from '../../redis/keys';
import type { InputProblem } from './input-problem';
import type { ClusterInputRead, ClusterSourceDef } from './input-source';

type ClusterInput = { clusterStress: number };

export interface ClusterStressSourceOptions {
  keys: RedisKeys;
  /** MAX_LKG_AGE_SEC: how long a cluster's last good stress stands in for an unusable one; 0 = never. */
  maxLkgAgeSec: number;
}

/**
 * The cluster stress input, `quantum:cluster:stress:<cluster_id>` (`stress` in [0,1]). A missing
 * hash is no stress (0, not counted). An unusable one (out of range, unreadable) is replaced by the
 * cluster's last good value while that is younger than MAX_LKG_AGE_SEC, else 0, and counted: never
 * silently 0 while a recent good value exists. It is read for every cluster a symbol's market state names.
 */
export class ClusterStressSource implements ClusterInputRead<ClusterInput, 'cluster_stress'> {
  private readonly lastGood = new Map<string, { stress: number; atSec: number }>();

  constructor(private readonly options: ClusterStressSourceOptions) {}

  commands(clusterId: string): RedisCommand[] {
    return [command('hgetall', this.options.keys.clusterStress(clusterId))];
  }

  judge(clusterId: string, [outcome]: readonly BatchOutcome[], nowSec: number, problems: InputProblem<'cluster_stress'>[]): ClusterInput {
    return { clusterStress: this.stressOf(clusterId, outcome!, nowSec, problems) };
  }

  private stressOf(clusterId: string, outcome: BatchOutcome, nowSec: number, problems: InputProblem<'cluster_stress'>[]): number {
    if (!outcome.error && Object.keys(outcome.value as object).length === 0) {
      this.lastGood.delete(clusterId);
      return 0;
    }
    const parsed = outcome.error ? undefined : ClusterStressHash.safeParse(outcome.value);
    if (parsed?.success) {
      this.lastGood.set(clusterId, { stress: parsed.data.stress, atSec: nowSec });
      return parsed.data.stress;
    }
    const detail = outcome.error ? `unreadable: ${outcome.error.message}` : `invalid: ${formatIssues(parsed!.error).join('; ')}`;
    const lkg = this.lastGood.get(clusterId);
    if (lkg && this.options.maxLkgAgeSec > 0 && nowSec - lkg.atSec <= this.options.maxLkgAgeSec) {
      problems.push({ inputType: 'cluster_stress', subject: clusterId, detail: `${detail}; using the last known ${lkg.stress} (${Math.round(nowSec - lkg.atSec)} s old)` });
      return lkg.stress;
    }
    problems.push({ inputType: 'cluster_stress', subject: clusterId, detail: `${detail}; using 0` });
    return 0;
  }
}

export const clusterStressSource = {
  name: 'cluster_stress',
  scope: 'cluster',
  staleLabels: ['cluster_stress'],
  create: (s: ClusterStressSourceOptions) => new ClusterStressSource(s),
} as const satisfies ClusterSourceDef<ClusterInput, 'cluster_stress', ClusterStressSourceOptions>;
