/** The checklist items, in the order the guide lists them and a report holds them. */
export const READINESS_ITEMS = ['shadow_stable', 'budgets_accurate', 'no_false_positives', 'governor_integration', 'stale_inputs', 'rollback_ready'] as const;
export type ReadinessItemId = (typeof READINESS_ITEMS)[number];

/** One checklist item: pass or fail, the figures, what they were held to, and the evidence. */
export interface ReadinessItem {
  id: ReadinessItemId;
  /** The guide's wording. */
  title: string;
  pass: boolean;
  /** One line: the figures against the threshold. */
  summary: string;
  figures: Record<string, number | string | null>;
  thresholds: Record<string, number | string>;
  /** Lines of evidence: what failed and where to look. */
  details: string[];
  /** Symbols (or hashes) listed for review. */
  listed: Array<Record<string, number | string>>;
}

export interface ReadinessReport {
  ready: boolean;
  evaluatedAt: string;
  window: { from: string; to: string; seconds: number };
  items: ReadinessItem[];
}
