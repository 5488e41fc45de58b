import { StringDecoder } from 'node:string_decoder';
import { BatchBuilder } from './batch-builder.js';
import type { CandidateBatch } from './types.js';

/** Longer lines cannot hold an ID; they are rejected without being kept in memory. */
export const MAX_LINE_CHARS = 4096;

/**
 * Turns a byte stream of newline-delimited IDs into batches: decodes UTF-8 (invalid bytes become
 * U+FFFD, which validation reports), strips BOM, CR and surrounding blanks, skips blank and
 * `#` comment lines, and rejects over-long lines while reading past them.
 */
export async function* splitLines(
  chunks: AsyncIterable<Buffer>,
  origin: string,
  batchSize: number,
): AsyncGenerator<CandidateBatch> {
  const decoder = new StringDecoder('utf8');
  const batch = new BatchBuilder(origin, batchSize);
  let carry = '';
  let carryTooLong = false;
  let lineNumber = 0;

  const acceptLine = (raw: string): void => {
    lineNumber++;
    if (carryTooLong || raw.length > MAX_LINE_CHARS) {
      batch.reject(lineNumber, `line longer than ${MAX_LINE_CHARS} characters`);
      carryTooLong = false;
      return;
    }
    const id = raw.trim(); // also removes CR and a leading BOM (U+FEFF is white space)
    if (id.length === 0 || id.charCodeAt(0) === 0x23 /* # */) return;
    batch.add(id, lineNumber);
  };

  for await (const chunk of chunks) {
    const text = decoder.write(chunk);
    let start = 0;
    let newline = text.indexOf('\n', start);
    while (newline !== -1) {
      const piece = text.slice(start, newline);
      acceptLine(carry.length > 0 ? carry + piece : piece);
      carry = '';
      if (batch.full) yield batch.take() as CandidateBatch;
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    if (start < text.length) {
      if (carryTooLong || carry.length + text.length - start > MAX_LINE_CHARS) {
        carryTooLong = true;
        carry = '';
      } else {
        carry += text.slice(start);
      }
    }
  }
  const tail = carry + decoder.end();
  if (tail.length > 0 || carryTooLong) acceptLine(tail);
  const last = batch.take();
  if (last) yield last;
}
