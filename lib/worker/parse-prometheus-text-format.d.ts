/** Types of `parse-prometheus-text-format`, which ships none: the parts the heat source uses. */
declare module 'parse-prometheus-text-format' {
  interface ParsedSample {
    value?: string;
    labels?: Record<string, string>;
    timestamp_ms?: string;
  }
  interface ParsedFamily {
    name: string;
    help: string;
    /** Upper case: GAUGE, COUNTER, HISTOGRAM, SUMMARY or UNTYPED. */
    type: string;
    metrics: ParsedSample[];
  }
  /** Parses Prometheus text exposition; throws on a line it cannot read. */
  function parsePrometheusTextFormat(text: string): ParsedFamily[];
  export = parsePrometheusTextFormat;
}
