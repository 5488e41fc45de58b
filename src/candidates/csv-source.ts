import { parse } from 'csv-parse';
import { Readable } from 'node:stream';
import { FfError, errorMessage } from '../errors.js';
import { BatchBuilder } from './batch-builder.js';
import { MAX_LINE_CHARS } from './line-source.js';
import type { CandidateBatch } from './types.js';

type CsvRecord = { record: Record<string, string | undefined>; info: { lines: number } };

/**
 * Reads one named column of a CSV file with a header row (quoted fields, CRLF, BOM, blank and `#`
 * comment lines handled by csv-parse). Positions are the line on which each record ends.
 */
export async function* readCsvColumn(
  chunks: AsyncIterable<Buffer>,
  origin: string,
  column: string,
  batchSize: number,
): AsyncGenerator<CandidateBatch> {
  const parser = Readable.from(chunks).pipe(
    parse({
      bom: true,
      columns: (header: string[]) => checkHeader(header, origin, column),
      comment: '#',
      comment_no_infix: true,
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true,
      info: true,
      max_record_size: MAX_LINE_CHARS,
    }),
  );
  const batch = new BatchBuilder(origin, batchSize);
  try {
    for await (const { record, info } of parser as AsyncIterable<CsvRecord>) {
      const id = record[column];
      if (id === undefined || id === '') batch.reject(info.lines, `no value in column "${column}"`);
      else batch.add(id, info.lines);
      if (batch.full) yield batch.take() as CandidateBatch;
    }
  } catch (error) {
    if (error instanceof FfError) throw error;
    throw new FfError('INPUT_MALFORMED', `${origin}: malformed CSV (${errorMessage(error)})`, { cause: error });
  }
  const last = batch.take();
  if (last) yield last;
}

/**
 * The header's column names, trimmed. The chosen column must be there exactly once: with two of
 * that name, csv-parse would silently keep the later value of each record.
 */
function checkHeader(header: string[], origin: string, column: string): string[] {
  const names = header.map((name) => name.trim());
  const positions = names.flatMap((name, index) => (name === column ? [index + 1] : []));
  if (positions.length === 0) {
    throw new FfError('INPUT_MALFORMED', `${origin}: no column "${column}" in the header (found: ${names.join(', ')})`);
  }
  if (positions.length > 1) {
    throw new FfError('INPUT_MALFORMED', `${origin}: the header has ${positions.length} columns named "${column}" (columns ${positions.join(', ')}); rename all but one so the user ID column is unambiguous`);
  }
  return names;
}
