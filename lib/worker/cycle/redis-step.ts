/** A Redis failure that ended a cycle (as opposed to a programming error), named by the step it ended. */
export class RedisStepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'RedisStepError';
  }
}

/** Runs one Redis round of a step; a rejection becomes a `RedisStepError` named after `step`. */
export async function redisStep<T>(step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new RedisStepError(step, error);
  }
}
