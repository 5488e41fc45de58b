import { gunzipSync } from 'node:zlib';
import { errorMessage } from '../errors.js';
import { namesFlag } from '../investigate/bucket.js';
import { classify, type Encoding } from '../investigate/encodings.js';

/** Documents in one message beyond which it is refused (its versions are offset × this + index). */
export const MAX_DOCUMENTS_PER_MESSAGE = 1000;

/** What one gzipped message may decompress to (investigate's classify() allows as much). */
const MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024;

export type DecodedMessage =
  | { kind: 'documents'; documents: unknown[] }
  /** The flag's name appears nowhere in it: about another flag, skipped unparsed. */
  | { kind: 'unrelated' }
  /** No value, and a key naming the flag: the flag was deleted, or compaction's marker. */
  | { kind: 'tombstone' }
  | { kind: 'malformed'; reason: MalformedReason; detail: string };

/** Why a message could not be read: a small, fixed set (a metric label). */
export type MalformedReason = 'malformed' | 'schema-registry' | 'protobuf' | 'binary' | 'text' | 'csv' | 'empty' | 'too-many-documents' | 'unreadable' | 'unapplicable';

const REASON_OF: Partial<Record<Encoding, MalformedReason>> = {
  malformed: 'malformed',
  'confluent-framed': 'schema-registry',
  protobuf: 'protobuf',
  binary: 'binary',
  text: 'text',
  csv: 'csv',
  empty: 'empty',
};

/**
 * Reads one message of the flag topic. Most messages are about other flags: a value whose bytes
 * do not contain the flag's name is skipped without parsing (a JSON document that spelled the
 * name with \u escapes would be missed: flag systems do not write them). Gzip is decompressed
 * first; other encodings are read as `investigate` reads them.
 */
export function decodeMessage(value: Buffer | null, key: Buffer | null, needle: Buffer): DecodedMessage {
  // A tombstone's key must name the flag as a whole word: `my_flag_v2`'s is not `my_flag`'s.
  if (value === null) return key !== null && namesFlag(key.toString('utf8'), needle.toString('utf8')) ? { kind: 'tombstone' } : { kind: 'unrelated' };
  // Decompressed here, not by classify(): the flag's name is looked for in what the gzip holds.
  let bytes = value;
  if (value[0] === 0x1f && value[1] === 0x8b) {
    try {
      bytes = gunzipSync(value, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
    } catch (error) {
      return { kind: 'malformed', reason: 'malformed', detail: `gzip that cannot be decompressed (${errorMessage(error)})` };
    }
  }
  if (!bytes.includes(needle)) return { kind: 'unrelated' };
  const classified = classify(bytes);
  const inner = classified.inner ?? classified;
  if (classified.encoding === 'malformed' || inner.encoding === 'malformed') return { kind: 'malformed', reason: 'malformed', detail: inner.problem ?? classified.problem ?? 'cannot be parsed' };
  if (inner.documents.length === 0 || !['json', 'ndjson', 'yaml'].includes(inner.encoding)) {
    const reason = REASON_OF[inner.encoding] ?? 'malformed';
    return { kind: 'malformed', reason, detail: `not a JSON or YAML document (${inner.encoding}${inner.schemaId !== undefined ? `, schema id ${inner.schemaId}` : ''})` };
  }
  if (inner.documents.length > MAX_DOCUMENTS_PER_MESSAGE) return { kind: 'malformed', reason: 'too-many-documents', detail: `${inner.documents.length} documents in one message (at most ${MAX_DOCUMENTS_PER_MESSAGE})` };
  return { kind: 'documents', documents: inner.documents };
}
