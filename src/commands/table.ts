/**
 * AnyLog-style text tables:
 *
 *     Process         Status       Details
 *     ---------------|------------|--------|
 *     TCP            |Running     |...     |
 */
export function formatTable (header: string[], rows: string[][], indent = '    '): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[], sep: string) => indent + cells.map((c, i) => (c ?? '').padEnd(widths[i])).join(sep) + sep.trimStart()
  return [
    indent + header.map((h, i) => h.padEnd(widths[i] + 1)).join('').trimEnd(),
    indent + widths.map(w => '-'.repeat(w)).join('|') + '|',
    ...rows.map(r => line(r, '|'))
  ].join('\n')
}
