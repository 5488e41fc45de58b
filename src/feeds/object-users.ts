import { StringDecoder } from 'node:string_decoder';
import { MAX_LINE_CHARS } from '../candidates/line-source.js';
import type { MappingConfig } from '../investigate/mapping.js';
import { compilePath, select, type PathStep } from './json-path.js';

export interface UserBatch {
  users: string[];
  /** Lines that held no valid user ID (not matching idPattern, broken JSON, too long). */
  invalid: number;
  firstInvalid: string | null;
}

type Format = { kind: 'ndjson'; users: PathStep[] } | { kind: 'csv'; column: number; header: boolean } | { kind: 'lines' };

/**
 * The users of an object that *is* the list (a bucket object linked to the flag by its key), read
 * as a stream so memory stays flat whatever the object's size: one ID per line, a CSV with the
 * mapping's column (the last name of its usersPath, `user_id` for `$.user_id`), or NDJSON rows
 * read through the usersPath. The first non-blank line tells which.
 */
export async function* listUsers(chunks: AsyncIterable<Buffer>, mapping: MappingConfig, idPattern: RegExp, batchSize = 10_000): AsyncGenerator<UserBatch> {
  const decoder = new StringDecoder('utf8');
  const column = lastFieldName(mapping.usersPath);
  let format: Format | undefined;
  let batch: UserBatch = { users: [], invalid: 0, firstInvalid: null };
  let carry = '';
  const reject = (line: string): void => {
    batch.invalid += 1;
    batch.firstInvalid ??= line.slice(0, 64);
  };
  const accept = (raw: string): void => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.length > MAX_LINE_CHARS) return reject(line);
    if (!format) {
      format = formatOf(line, column, mapping);
      if ((format.kind === 'csv' && format.header) || (format.kind === 'lines' && line === column)) return; // a header
    }
    for (const id of idsOf(line, format)) {
      if (idPattern.test(id)) batch.users.push(id);
      else reject(id);
    }
  };
  for await (const chunk of chunks) {
    const text = carry + decoder.write(chunk);
    const lines = text.split('\n');
    carry = lines.pop() ?? '';
    if (carry.length > MAX_LINE_CHARS) carry = carry.slice(0, MAX_LINE_CHARS + 1); // kept too long: rejected when it ends
    for (const line of lines) accept(line);
    if (batch.users.length >= batchSize) {
      yield batch;
      batch = { users: [], invalid: 0, firstInvalid: null };
    }
  }
  accept(carry + decoder.end());
  if (batch.users.length > 0 || batch.invalid > 0) yield batch;
}

function formatOf(line: string, column: string | null, mapping: MappingConfig): Format {
  if (line.startsWith('{') && mapping.usersPath) return { kind: 'ndjson', users: compilePath(mapping.usersPath) };
  const header = line.split(',').map((name) => name.trim().replace(/^"|"$/g, ''));
  if (header.length > 1) {
    // A first row naming the column is the header; otherwise the rows start at once, IDs first.
    const index = column ? header.indexOf(column) : -1;
    return index >= 0 ? { kind: 'csv', column: index, header: true } : { kind: 'csv', column: 0, header: !/\d/.test(header[0] ?? '') };
  }
  return { kind: 'lines' };
}

function idsOf(line: string, format: Format): string[] {
  if (format.kind === 'lines') return [line];
  if (format.kind === 'csv') return [(line.split(',')[format.column] ?? '').trim().replace(/^"|"$/g, '')];
  try {
    const values = select(JSON.parse(line) as unknown, format.users).flatMap((value) => (typeof value === 'string' ? [value] : Number.isSafeInteger(value) ? [String(value)] : []));
    return values.length > 0 ? values : [line]; // a row without a user is counted invalid
  } catch {
    return [line];
  }
}

/** `$.user_id` → `user_id`; `$.rows[*].id` → `id`; null when the path ends otherwise. */
function lastFieldName(path: string | null): string | null {
  if (!path) return null;
  const steps = compilePath(path);
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i] as PathStep;
    if (step.kind === 'field') return step.name;
  }
  return null;
}
