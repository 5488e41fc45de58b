import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_DOCUMENTS_PER_MESSAGE, decodeMessage } from '../../src/feeds/message-decoder.js';

// Issue 15: one message of the flag topic, read cheaply — most are about other flags.

const FLAG = 'consumer_graph_ingestion';
const needle = Buffer.from(FLAG);
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const ours = { name: FLAG, users: ['u1', 'u2'] };
const theirs = { name: 'dark_mode', users: ['u1'] };

describe('decodeMessage', () => {
  it('a JSON document naming the flag is parsed', () => {
    expect(decodeMessage(json(ours), null, needle)).toEqual({ kind: 'documents', documents: [ours] });
  });

  it('a message that does not contain the flag name is unrelated, even when unreadable', () => {
    expect(decodeMessage(json(theirs), null, needle)).toEqual({ kind: 'unrelated' });
    expect(decodeMessage(Buffer.from('{"name": "dark_mode", '), null, needle)).toEqual({ kind: 'unrelated' });
    expect(decodeMessage(Buffer.alloc(0), Buffer.from(FLAG), needle)).toEqual({ kind: 'unrelated' });
  });

  it('gzip is decompressed: with the flag inside, its documents', () => {
    expect(decodeMessage(gzipSync(json(ours)), null, needle)).toEqual({ kind: 'documents', documents: [ours] });
  });

  it('gzip without the flag inside is unrelated, whatever it holds', () => {
    expect(decodeMessage(gzipSync(json(theirs)), null, needle)).toEqual({ kind: 'unrelated' });
    expect(decodeMessage(gzipSync(Buffer.from('plain words about dark_mode')), null, needle)).toEqual({ kind: 'unrelated' });
    expect(decodeMessage(gzipSync(Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from('dark_mode')])), null, needle)).toEqual({ kind: 'unrelated' });
  });

  it('gzip that cannot be decompressed is malformed', () => {
    const cut = gzipSync(json(ours)).subarray(0, 12);
    expect(decodeMessage(cut, null, needle)).toMatchObject({ kind: 'malformed', reason: 'malformed', detail: expect.stringContaining('gzip') });
  });

  it('no value: a tombstone when the key names the flag, unrelated otherwise', () => {
    expect(decodeMessage(null, Buffer.from(`flags/${FLAG}`), needle)).toEqual({ kind: 'tombstone' });
    expect(decodeMessage(null, Buffer.from('flags/dark_mode'), needle)).toEqual({ kind: 'unrelated' });
    expect(decodeMessage(null, null, needle)).toEqual({ kind: 'unrelated' });
  });

  it('a value naming the flag is read even when the key names another', () => {
    expect(decodeMessage(json(ours), Buffer.from('dark_mode'), needle)).toMatchObject({ kind: 'documents' });
  });

  it('broken JSON naming the flag is malformed, with the parser\'s reason', () => {
    const decoded = decodeMessage(Buffer.from(`{"name": "${FLAG}", "users": [`), null, needle);
    expect(decoded).toMatchObject({ kind: 'malformed', reason: 'malformed' });
    expect(decoded.kind === 'malformed' && decoded.detail).toMatch(/JSON/);
  });

  it('a Confluent-framed value (schema registry) is refused as such, naming the schema id', () => {
    const framed = Buffer.concat([Buffer.from([0x00, 0x00, 0x00, 0x01, 0x2c]), Buffer.from([0x30]), needle, Buffer.from([0x04, 0x75, 0x31])]);
    expect(decodeMessage(framed, null, needle)).toEqual({ kind: 'malformed', reason: 'schema-registry', detail: expect.stringContaining('schema id 300') });
  });

  it('a gzipped Confluent-framed value names its schema id too', () => {
    const framed = Buffer.concat([Buffer.from([0x00, 0x00, 0x00, 0x00, 0x07]), needle]);
    expect(decodeMessage(gzipSync(framed), null, needle)).toEqual({ kind: 'malformed', reason: 'schema-registry', detail: expect.stringContaining('schema id 7') });
  });

  it('plain text and CSV naming the flag are malformed, each with its reason', () => {
    expect(decodeMessage(Buffer.from(`${FLAG} was switched on`), null, needle)).toMatchObject({ kind: 'malformed', reason: 'text' });
    expect(decodeMessage(Buffer.from(`flag,user\n${FLAG},u1\n${FLAG},u2`), null, needle)).toMatchObject({ kind: 'malformed', reason: 'csv' });
  });

  it('NDJSON: every line a document', () => {
    const lines = [ours, theirs, { name: FLAG, users: ['u3'] }];
    const decoded = decodeMessage(Buffer.from(lines.map((line) => JSON.stringify(line)).join('\n')), null, needle);
    expect(decoded).toEqual({ kind: 'documents', documents: lines });
  });

  it('YAML naming the flag is read', () => {
    expect(decodeMessage(Buffer.from(`name: ${FLAG}\nusers:\n  - u1\n`), null, needle)).toEqual({ kind: 'documents', documents: [{ name: FLAG, users: ['u1'] }] });
  });

  it(`at most ${MAX_DOCUMENTS_PER_MESSAGE} documents in one message`, () => {
    const ndjson = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => JSON.stringify({ name: FLAG, users: [`u${i}`] })).join('\n'));
    expect(decodeMessage(ndjson(MAX_DOCUMENTS_PER_MESSAGE), null, needle)).toMatchObject({ kind: 'documents', documents: { length: MAX_DOCUMENTS_PER_MESSAGE } });
    expect(decodeMessage(ndjson(MAX_DOCUMENTS_PER_MESSAGE + 1), null, needle)).toMatchObject({ kind: 'malformed', reason: 'too-many-documents', detail: expect.stringContaining(`${MAX_DOCUMENTS_PER_MESSAGE + 1} documents`) });
  });
});
