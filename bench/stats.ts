/** Small timing helpers for the benchmarks: high-resolution samples and their percentiles. */

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Microseconds elapsed since `startNs`. */
export function elapsedUs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1000;
}

/** The q-quantile (0..1) of `samples` by nearest rank. */
export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 0.5);
}

export function max(samples: readonly number[]): number {
  return samples.reduce((m, x) => (x > m ? x : m), Number.NEGATIVE_INFINITY);
}

/**
 * Runs `a` and `b` in alternating blocks so that both see the same machine load (the machine is
 * shared; absolute times drift, ratios taken this way do not).
 */
export async function interleaved(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  options: { samples: number; block: number },
): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  while (out.a.length < options.samples) {
    for (const [fn, sink] of [[a, out.a], [b, out.b]] as const) {
      for (let i = 0; i < options.block; i++) {
        const t = nowNs();
        await fn();
        sink.push(elapsedUs(t));
      }
    }
  }
  return out;
}

/** Operations per second of `op` run by `concurrency` callers until `totalOps` have completed. */
export async function throughput(op: () => Promise<unknown>, concurrency: number, totalOps: number): Promise<number> {
  let started = 0;
  const t = nowNs();
  const caller = async () => {
    while (started < totalOps) {
      started++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return totalOps / (elapsedUs(t) / 1e6);
}
