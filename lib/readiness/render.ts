import type { ReadinessItem, ReadinessReport } from './report';
import { formatDuration } from './window';

/** Renders rows as left-aligned columns under a header. */
export function columns(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const thresholdText = (item: ReadinessItem): string =>
  Object.entries(item.thresholds)
    .map(([k, v]) => `${k} ${typeof v === 'number' && /Share$/.test(k) ? `${Math.round(v * 10000) / 100} %` : v}`)
    .join(', ');

/** The report for a person: verdict, a short table (item, result, figures), then the details. */
export function renderReadiness(report: ReadinessReport): string {
  const passed = report.items.filter((i) => i.pass).length;
  const head = `readiness over ${formatDuration(report.window.seconds * 1000)} (${report.window.from} to ${report.window.to}): ${
    report.ready ? 'READY to enforce' : `NOT READY (${report.items.length - passed} of ${report.items.length} items fail)`
  }\n\n`;
  const table = columns(
    ['ITEM', 'RESULT', 'FIGURES'],
    report.items.map((i) => [i.title, i.pass ? 'pass' : 'FAIL', i.summary]),
  );
  const details = report.items
    .map((i) => [`${i.pass ? 'pass' : 'FAIL'}  ${i.title}`, `      threshold: ${thresholdText(i)}`, ...i.details.map((d) => `      - ${d}`)].join('\n'))
    .join('\n');
  return `${head}${table}\ndetails\n${details}\n`;
}

/**
 * An OPS ledger entry (markdown) with the evidence: the checklist as the guide writes it, each
 * item ticked only when it passed, its figures and thresholds, and the details.
 */
export function renderLedger(report: ReadinessReport, context: { mode: string; instance?: string }): string {
  const lines = [
    `## P2.8 Portfolio Risk Governor: pre-activation check, ${report.evaluatedAt}`,
    '',
    `- Window: ${report.window.from} to ${report.window.to} (${formatDuration(report.window.seconds * 1000)})`,
    `- Configured mode (P28_MODE): ${context.mode}`,
    ...(context.instance ? [`- Evaluated by: ${context.instance}`] : []),
    `- Verdict: **${report.ready ? 'READY to enforce' : 'NOT READY'}**`,
    '',
    '| item | result | figures | threshold |',
    '|---|---|---|---|',
    ...report.items.map((i) => `| ${i.title} | ${i.pass ? 'pass' : '**FAIL**'} | ${i.summary} | ${thresholdText(i)} |`),
    '',
    '### Checklist',
    '',
    ...report.items.map((i) => `- [${i.pass ? 'x' : ' '}] **${i.title}**: ${i.summary}`),
    `- [${report.ready ? 'x' : ' '}] **OPS ledger entry created**: this entry`,
    '',
    '### Evidence',
    '',
    ...report.items.flatMap((i) => [`**${i.title}** (${i.pass ? 'pass' : 'FAIL'})`, '', ...i.details.map((d) => `- ${d}`), ...(i.details.length === 0 ? ['- nothing to report'] : []), '']),
  ];
  return `${lines.join('\n')}\n`;
}
