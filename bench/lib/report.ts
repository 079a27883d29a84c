// Output shared by every benchmark: aligned tables for people, and one `RESULT {json}` line for machines,
// which must be the last line the benchmark prints on stdout.

export type Cell = string | number | undefined;

/** Prints rows under headers, numbers right-aligned, with a rule under the header. */
export function printTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const text = rows.map((row) => headers.map((_, i) => formatCell(row[i])));
  const numeric = headers.map((_, i) =>
    rows.every((row) => row[i] === undefined || typeof row[i] === 'number'),
  );
  const widths = headers.map((header, i) => Math.max(header.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(headers));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of text) console.log(line(row));
}

function formatCell(value: Cell): string {
  if (value === undefined) return '-';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return String(value);
    return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(2);
  }
  return value;
}

/** The machine-readable summary: `RESULT {"bench":…}`. Print nothing on stdout after it. */
export function printResult(result: { bench: string } & Record<string, unknown>): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}
