/** An amount in USD with cents, or `-` when it is no number. */
export const usd = (value: unknown): string => {
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(2) : '-';
};

/** Renders rows as left-aligned columns (at least `minWidths` wide), under a header unless it is left out. */
export function table(header: readonly string[], rows: readonly string[][], options: { minWidths?: readonly number[]; withHeader?: boolean } = {}): string {
  const widths = header.map((h, i) => Math.max(h.length, options.minWidths?.[i] ?? 0, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const lines = options.withHeader === false ? rows.map(line) : [line(header), ...rows.map(line)];
  return lines.join('\n') + '\n';
}
