import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FileCandidateSource } from '../../src/candidates/file-source.js';
import { MAX_LINE_CHARS, splitLines } from '../../src/candidates/line-source.js';
import type { CandidateBatch } from '../../src/candidates/types.js';
import { FfError } from '../../src/errors.js';
import { writeTemp, tempDir } from '../helpers/files.js';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

async function collect(batches: AsyncIterable<CandidateBatch>) {
  const ids: Array<[string, number]> = [];
  const rejected: Array<[number, string]> = [];
  let count = 0;
  for await (const batch of batches) {
    count++;
    batch.ids.forEach((id, i) => ids.push([id, batch.positions[i] as number]));
    for (const r of batch.rejected) rejected.push([r.position, r.reason]);
  }
  return { ids, rejected, batches: count };
}

const read = (location: string, column?: string, batchSize = 1000) => collect(new FileCandidateSource({ location, column, batchSize }).batches());

describe('newline-delimited candidate files', () => {
  it('handles BOM, CRLF, surrounding blanks, blank and comment lines, with line numbers', async () => {
    const file = writeTemp('c.txt', '\uFEFFu1\r\n  u2  \r\n\r\n# a comment\r\n\tu3\t\r\n   \r\nu4');
    expect((await read(file)).ids).toEqual([['u1', 1], ['u2', 2], ['u3', 5], ['u4', 7]]);
  });

  it('reads gzip, detected from the content whatever the name', async () => {
    const file = writeTemp('candidates.txt', 'a\nb\nc\n', { gzip: true });
    expect((await read(file)).ids.map(([id]) => id)).toEqual(['a', 'b', 'c']);
  });

  it('batches by the configured size', async () => {
    const file = writeTemp('c.txt', Array.from({ length: 2500 }, (_, i) => `u${i}`).join('\n'));
    const result = await read(file, undefined, 1000);
    expect(result.batches).toBe(3);
    expect(result.ids).toHaveLength(2500);
    expect(result.ids.at(-1)).toEqual(['u2499', 2500]);
  });

  it('yields nothing for an empty file', async () => {
    expect(await read(writeTemp('empty.txt', ''))).toEqual({ ids: [], rejected: [], batches: 0 });
  });

  it('keeps non-UTF-8 bytes visible as U+FFFD for validation to reject', async () => {
    const file = writeTemp('c.txt', Buffer.concat([Buffer.from('ok\nbad'), Buffer.from([0xff, 0xfe]), Buffer.from('id\nfine\n')]));
    expect((await read(file)).ids).toEqual([['ok', 1], ['bad\uFFFD\uFFFDid', 2], ['fine', 3]]);
  });

  it('rejects a 100 MB line without holding it, and goes on after it', async () => {
    const file = path.join(tempDir(), 'huge.txt');
    const out = createWriteStream(file);
    out.write('before\n');
    const chunk = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 100; i++) if (!out.write(chunk)) await once(out, 'drain');
    out.end('\nafter\n');
    await once(out, 'finish');
    const before = process.memoryUsage().heapUsed;
    const result = await read(file);
    expect(result.ids).toEqual([['before', 1], ['after', 3]]);
    expect(result.rejected).toEqual([[2, `line longer than ${MAX_LINE_CHARS} characters`]]);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 * 1024 * 1024);
  });

  it('rejects an over-long last line without a newline', async () => {
    const result = await read(writeTemp('c.txt', `a\n${'y'.repeat(MAX_LINE_CHARS + 1)}`));
    expect(result.rejected).toEqual([[2, `line longer than ${MAX_LINE_CHARS} characters`]]);
  });

  it('streams: the first batch arrives before the input ends', async () => {
    let produced = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        produced++;
        yield Buffer.from('u\n'.repeat(500));
      }
    }
    const iterator = splitLines(endless(), 'endless', 1000)[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value?.ids).toHaveLength(1000);
    expect(produced).toBeLessThan(5);
    await iterator.return?.(undefined);
  });

  it('names the file when it is missing', async () => {
    const missing = path.join(tempDir(), 'nope.txt');
    await expect(read(missing)).rejects.toThrow(new FfError('INPUT_UNREADABLE', `cannot read ${missing}: no such file`));
  });

  it('names the file when it is a directory', async () => {
    const dir = tempDir();
    await expect(read(dir)).rejects.toThrow(`cannot read ${dir}`);
  });

  it('names the file when its gzip data is truncated', async () => {
    const whole = gzipSync(Array.from({ length: 10_000 }, (_, i) => `user-${i}`).join('\n'));
    const file = writeTemp('cut.gz', whole.subarray(0, whole.length - 50));
    await expect(read(file)).rejects.toThrow(`${file}: corrupt or truncated gzip data`);
  });
});

describe('CSV candidate files', () => {
  it('reads the named column, with BOM, CRLF, quotes, blanks and comments', async () => {
    const csv = '\uFEFFemail,user_id,name\r\na@x,u1,"Ann, A."\r\n\r\n# comment\r\nb@x, u2 ,"multi\nline"\r\nc@x,,C\r\n';
    const result = await read(writeTemp('c.csv', csv), 'user_id');
    expect(result.ids).toEqual([['u1', 2], ['u2', 6]]);
    expect(result.rejected).toEqual([[7, 'no value in column "user_id"']]);
  });

  it('reads gzipped CSV', async () => {
    const result = await read(writeTemp('c.csv.gz', 'id\nu1\nu2\n', { gzip: true }), 'id');
    expect(result.ids.map(([id]) => id)).toEqual(['u1', 'u2']);
  });

  it('names the file and the columns when the column is missing', async () => {
    const file = writeTemp('c.csv', 'a,b\n1,2\n');
    await expect(read(file, 'user_id')).rejects.toThrow(`${file}: no column "user_id" in the header (found: a, b)`);
  });

  it('reports malformed CSV with the file name', async () => {
    const file = writeTemp('c.csv', 'id\n"unterminated\n');
    await expect(read(file, 'id')).rejects.toThrow(`${file}: malformed CSV`);
  });
});
