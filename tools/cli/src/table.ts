// Plain-text tables for the terminal, columns sized to their content. Cells may hold what an NF
// answered (flow names, rule ids), so control characters are shown as '?': a pod cannot move
// the cursor or retitle the operator's terminal through them.
const printable = (text: string): string =>
  [...text].map((ch) => (/\p{Cc}/u.test(ch) ? '?' : ch)).join('');

export function renderTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => printable(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join(
    '\n',
  );
}
