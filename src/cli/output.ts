import type { Writable } from 'node:stream';

/**
 * Writes one line and waits until it (and everything written before it) has been handed to the
 * operating system. A pipe's writes can still be buffered in the process when write() returns
 * true, and the CLI exits explicitly right after its summary: waiting only for 'drain' lost the
 * summary line of a 10M-candidate dry run piped into `tail`.
 */
export function writeLine(out: Writable, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(`${line}\n`, (error) => (error ? reject(error) : resolve()));
  });
}

/** Left-aligned columns, two spaces apart, for people reading a terminal. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all.map((row) => row.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()).join('\n');
}
