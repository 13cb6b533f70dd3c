/** One column of a text table: its header, and `right` for figures so their digits line up. */
export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/**
 * Renders rows as a plain-text table with aligned columns (two spaces apart, no borders), one
 * string per line, each starting with `indent`. Trailing blanks are trimmed.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[], indent = '  '): string[] {
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    indent +
    columns
      .map((column, i) => {
        const cell = cells[i] ?? '';
        const width = widths[i] ?? 0;
        return column.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)];
}
