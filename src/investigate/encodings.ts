import { gunzipSync } from 'node:zlib';
import YAML from 'yaml';

export type Encoding = 'empty' | 'gzip' | 'json' | 'ndjson' | 'yaml' | 'csv' | 'confluent-framed' | 'protobuf' | 'text' | 'binary' | 'malformed';

export interface Classified {
  /** The outer encoding; for gzip, `inner` says what was inside. */
  encoding: Encoding;
  inner?: Classified;
  /** Confluent wire format (magic byte 0): the schema registry id. */
  schemaId?: number;
  /** Structured documents found (one for JSON/YAML, one per line for NDJSON, per row for CSV). */
  documents: unknown[];
  /** Why a `malformed` sample could not be read. */
  problem?: string;
}

/** Larger payloads are looked at only partly: investigation reads samples, not archives. */
const MAX_DECODED_BYTES = 16 * 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Says what a message value or an object is made of, and parses what it can. */
export function classify(bytes: Buffer): Classified {
  if (bytes.length === 0) return { encoding: 'empty', documents: [] };
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let unzipped: Buffer;
    try {
      unzipped = gunzipSync(bytes, { maxOutputLength: MAX_DECODED_BYTES });
    } catch (error) {
      // Cut short or corrupt: that is a broken sample, not a binary format needing a schema.
      return { encoding: 'malformed', documents: [], problem: `gzip that cannot be decompressed (${error instanceof Error ? error.message : String(error)})` };
    }
    const inner = classify(unzipped);
    return { encoding: 'gzip', inner, documents: inner.documents };
  }
  if (bytes[0] === 0x00 && bytes.length >= 5) return { encoding: 'confluent-framed', schemaId: bytes.readUInt32BE(1), documents: [] };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    if (isProtobuf(bytes)) return { encoding: 'protobuf', documents: [] };
    // Mostly text with invalid sequences is broken text, not a binary format.
    const printable = bytes.filter((byte) => byte === 0x09 || byte === 0x0a || byte === 0x0d || (byte >= 0x20 && byte < 0x7f)).length;
    if (printable / bytes.length >= 0.8) return { encoding: 'malformed', documents: [], problem: `not UTF-8 (byte ${firstInvalidUtf8(bytes)})` };
    return { encoding: 'binary', documents: [] };
  }
  return classifyText(text);
}

function classifyText(text: string): Classified {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return { encoding: 'json', documents: [JSON.parse(trimmed)] };
    } catch (error) {
      const lines = trimmed.split('\n').filter((line) => line.trim() !== '');
      const parsed = lines.map(tryJson);
      if (lines.length > 1 && parsed.every((value) => value !== undefined)) return { encoding: 'ndjson', documents: parsed };
      // It opens as JSON and is not: broken JSON (cut short, hand-edited), not plain text.
      return { encoding: 'malformed', documents: parsed.filter((value) => value !== undefined), problem: `not valid JSON (${error instanceof Error ? error.message : String(error)})` };
    }
  }
  const csv = asCsv(trimmed);
  if (csv) return { encoding: 'csv', documents: csv };
  if (/^[\w"'-][^\n]*:\s/m.test(trimmed)) {
    try {
      const value: unknown = YAML.parse(trimmed);
      if (typeof value === 'object' && value !== null) return { encoding: 'yaml', documents: [value] };
    } catch {
      // not YAML: plain text
    }
  }
  return { encoding: 'text', documents: [] };
}

/** The offset of the first byte that breaks UTF-8. */
function firstInvalidUtf8(bytes: Buffer): number {
  let low = 0;
  let high = bytes.length;
  // The longest valid prefix, by bisection on whether it decodes (a cut inside a sequence fails too).
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    try {
      utf8.decode(bytes.subarray(0, middle));
      low = middle;
    } catch {
      high = middle;
    }
  }
  return low;
}

function tryJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** A header row and at least one row with the same number of comma-separated fields. */
function asCsv(text: string): Array<Record<string, string>> | undefined {
  const lines = text.split(/\r?\n/).filter((line) => line !== '');
  if (lines.length < 2) return undefined;
  const header = (lines[0] as string).split(',').map((name) => name.trim());
  if (header.length < 2 || header.some((name) => name === '' || name.includes('{'))) return undefined;
  const rows = lines.slice(1).map((line) => line.split(','));
  if (!rows.every((row) => row.length === header.length)) return undefined;
  return rows.map((row) => Object.fromEntries(header.map((name, i) => [name, (row[i] as string).trim()])));
}

/**
 * Protobuf wire format, without a schema: a run of (field number ≥ 1, wire type 0/1/2/5) keys
 * whose values exactly fill the bytes.
 */
export function isProtobuf(bytes: Buffer): boolean {
  let at = 0;
  let fields = 0;
  while (at < bytes.length) {
    const key = readVarint(bytes, at);
    if (!key) return false;
    at = key.next;
    const wireType = key.value % 8;
    if (key.value < 8) return false; // field number 0
    if (wireType === 0) {
      const value = readVarint(bytes, at);
      if (!value) return false;
      at = value.next;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const length = readVarint(bytes, at);
      if (!length) return false;
      at = length.next + length.value;
    } else return false;
    fields++;
  }
  return at === bytes.length && fields > 0;
}

function readVarint(bytes: Buffer, start: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 10 && start + i < bytes.length; i++) {
    const byte = bytes[start + i] as number;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, next: start + i + 1 };
  }
  return undefined;
}
