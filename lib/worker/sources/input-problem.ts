import type { StaleInputType } from '../cycle-report';

/** An input that was missing, stale or invalid and replaced by its fallback; counted in `p28_stale_input_total`. */
export interface InputProblem {
  inputType: StaleInputType;
  /** The symbol or cluster id concerned. */
  subject: string;
  detail: string;
}
