/**
 * An input that was missing, stale or invalid and replaced by its fallback; counted in
 * `p28_stale_input_total` under `inputType`, one of the labels its source declares.
 */
export interface InputProblem<L extends string = string> {
  inputType: L;
  /** The symbol, cluster id or key concerned (`portfolio` for a portfolio-wide input). */
  subject: string;
  detail: string;
}
