/** One invalid setting: the env variable or option name, and what was wrong with it. */
export interface OptionIssue {
  field: string;
  message: string;
}

/**
 * Bad settings, found all at once: the worker's env (`ConfigError`) and the gate's options
 * (`GateOptionsError`) both carry every issue, so one run shows all of them. `code` is stable.
 */
export abstract class OptionsError extends Error {
  abstract readonly code: string;

  constructor(
    title: string,
    readonly issues: readonly OptionIssue[],
  ) {
    super(`${title}:\n${issues.map((i) => `  ${i.field}: ${i.message}`).join('\n')}`);
  }
}
