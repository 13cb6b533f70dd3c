/** How long one cleanup step may take before the next one runs anyway. */
const STEP_LIMIT_MS = 5000;

interface Step {
  name: string;
  run: () => void | Promise<void>;
}

/**
 * Everything the demo started, undone in reverse order: the gate before the worker, the worker
 * before the Redis it writes to. `run()` executes once however often it is called (the normal end,
 * an error and SIGINT may all ask for it) and never rejects: a step that fails or hangs is
 * reported and the remaining steps still run, so no server is left behind.
 */
export class CleanupStack {
  private readonly steps: Step[] = [];
  private running: Promise<string[]> | undefined;

  /** Registers `run` to undo something just started; `name` says what, for the closing summary. */
  add(name: string, run: () => void | Promise<void>): void {
    this.steps.push({ name, run });
  }

  /** Runs every step, last added first; resolves with the names of the steps that failed. */
  run(): Promise<string[]> {
    this.running ??= this.unwind();
    return this.running;
  }

  /** The names of the registered steps, in the order they run. */
  get names(): string[] {
    return this.steps.map((s) => s.name).reverse();
  }

  private async unwind(): Promise<string[]> {
    const failed: string[] = [];
    for (const step of [...this.steps].reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish within ${STEP_LIMIT_MS} ms`)), STEP_LIMIT_MS);
      });
      try {
        await Promise.race([Promise.resolve().then(step.run), limit]);
      } catch (error) {
        failed.push(`${step.name}: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    }
    return failed;
  }
}
