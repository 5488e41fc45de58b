import { describe, expect, it } from 'vitest';
import { MAX_LINE_CHARS } from '../../src/candidates/line-source.js';
import { listUsers, type UserBatch } from '../../src/feeds/object-users.js';
import type { MappingConfig } from '../../src/investigate/mapping.js';

// Issue 16: a bucket object that *is* the flag's list, read as a stream — plain lines, a CSV with
// the mapping's column, or NDJSON through the usersPath.

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;

function mapping(usersPath: string | null): MappingConfig {
  return { kind: 'snapshot', flagNamePath: null, usersPath, usersSeparator: null, percentagePath: null, enabledPath: null, operationPath: null, addValues: [], removeValues: [], filters: [] };
}

/** The bytes of `text` in chunks of `size` bytes (cutting lines and multi-byte characters anywhere). */
async function* chunked(text: string | Buffer, size = Number.MAX_SAFE_INTEGER): AsyncGenerator<Buffer> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Buffer>, usersPath: string | null = null, batchSize?: number): Promise<{ batches: UserBatch[]; users: string[]; invalid: number; firstInvalid: string | null }> {
  const batches: UserBatch[] = [];
  for await (const batch of listUsers(source, mapping(usersPath), idPattern, batchSize)) batches.push(batch);
  return { batches, users: batches.flatMap((batch) => batch.users), invalid: batches.reduce((sum, batch) => sum + batch.invalid, 0), firstInvalid: batches.find((batch) => batch.firstInvalid !== null)?.firstInvalid ?? null };
}

describe('listUsers: plain lines', () => {
  it('one ID a line; blank lines, comments, CRLF and surrounding spaces ignored', async () => {
    const { users, invalid } = await collect(chunked('user-1\r\n\n  user-2  \n# a comment\nuser-3'));
    expect(users).toEqual(['user-1', 'user-2', 'user-3']);
    expect(invalid).toBe(0);
  });

  it('the same users whatever the chunk boundaries, multi-byte UTF-8 cut in the middle included', async () => {
    const text = 'usér-1\nuser-2\nüser-3\n日本-4\nuser-5\n';
    const whole = await collect(chunked(text), null);
    expect(whole.users).toEqual(['user-2', 'user-5']);
    // é, ü and 日本 are not in idPattern: rejected whole, never as broken halves.
    expect(whole.invalid).toBe(3);
    for (const size of [1, 2, 3, 5, 7]) {
      const cut = await collect(chunked(text, size), null);
      expect(cut.users, `chunks of ${size}`).toEqual(whole.users);
      expect(cut.invalid, `chunks of ${size}`).toBe(3);
      expect(cut.firstInvalid, `chunks of ${size}`).toBe('usér-1');
    }
  });

  it('multi-byte IDs allowed by the pattern arrive intact across chunks', async () => {
    const text = 'ユーザー1\nユーザー2';
    const batches: UserBatch[] = [];
    for await (const batch of listUsers(chunked(text, 1), mapping(null), /^\S+$/u)) batches.push(batch);
    expect(batches.flatMap((batch) => batch.users)).toEqual(['ユーザー1', 'ユーザー2']);
  });

  it('a header naming the usersPath field is skipped, once', async () => {
    expect((await collect(chunked('user_id\nuser-1\nuser-2\n'), '$.user_id')).users).toEqual(['user-1', 'user-2']);
    // Only the first line can be a header.
    expect((await collect(chunked('user-1\nuser_id\n'), '$.user_id')).users).toEqual(['user-1', 'user_id']);
  });

  it('a last line without a newline is read', async () => {
    expect((await collect(chunked('user-1\nuser-2', 4))).users).toEqual(['user-1', 'user-2']);
  });
});

describe('listUsers: CSV', () => {
  it('reads the column named by the last field of the usersPath', async () => {
    const text = 'created_at,user_id,plan\n2024-01-01,user-1,pro\n2024-01-02,"user-2",free\n';
    expect((await collect(chunked(text), '$.user_id')).users).toEqual(['user-1', 'user-2']);
    expect((await collect(chunked(text), '$.rows[*].user_id')).users).toEqual(['user-1', 'user-2']);
  });

  it('a quoted header finds the column too', async () => {
    expect((await collect(chunked('"plan","user_id"\npro,user-9\n'), '$.user_id')).users).toEqual(['user-9']);
  });

  it('falls back to the first column when the header does not name the field (or there is no usersPath)', async () => {
    const text = 'id,plan\nuser-1,pro\nuser-2,free\n';
    expect((await collect(chunked(text), '$.user_id')).users).toEqual(['user-1', 'user-2']);
    expect((await collect(chunked(text), null)).users).toEqual(['user-1', 'user-2']);
  });

  it('a row without the column, or with an invalid ID there, is counted invalid', async () => {
    const { users, invalid, firstInvalid } = await collect(chunked('plan,user_id\npro\nfree,bad id\npro,user-3\n'), '$.user_id');
    expect(users).toEqual(['user-3']);
    expect(invalid).toBe(2);
    expect(firstInvalid).toBe('');
  });
});

describe('listUsers: NDJSON', () => {
  it('reads each row through the usersPath, lists included', async () => {
    const text = ['{"user_id":"user-1","plan":"pro"}', '{"user_id":"user-2"}', '{"other":"x"}'].join('\n');
    expect((await collect(chunked(text, 5), '$.user_id')).users).toEqual(['user-1', 'user-2']);
    const lists = ['{"ids":["user-1","user-2"]}', '{"ids":["user-3"]}'].join('\n');
    expect((await collect(chunked(lists, 3), '$.ids[*]')).users).toEqual(['user-1', 'user-2', 'user-3']);
  });

  it('a broken row and an ID not matching idPattern are counted invalid, with an example', async () => {
    const text = ['{"user_id":"user-1"}', '{"user_id":"user-2"', '{"user_id":"no spaces allowed"}', '{"user_id":"user-4"}'].join('\n');
    const { users, invalid, firstInvalid } = await collect(chunked(text), '$.user_id');
    expect(users).toEqual(['user-1', 'user-4']);
    expect(invalid).toBe(2);
    expect(firstInvalid).toBe('{"user_id":"user-2"');
  });
});

describe('listUsers: invalid and long lines', () => {
  it('counts invalid IDs and keeps the first as an example (cut to 64 characters)', async () => {
    const long = `bad id ${'x'.repeat(100)}`;
    const { users, invalid, firstInvalid } = await collect(chunked(`user-1\n${long}\nalso bad!\nuser-2\n`));
    expect(users).toEqual(['user-1', 'user-2']);
    expect(invalid).toBe(2);
    expect(firstInvalid).toBe(long.slice(0, 64));
  });

  it('rejects a line longer than MAX_LINE_CHARS, however it is chunked, and reads on after it', async () => {
    const long = 'a'.repeat(MAX_LINE_CHARS + 10);
    const text = `user-1\n${long}\nuser-2\n`;
    for (const size of [1000, MAX_LINE_CHARS, MAX_LINE_CHARS * 3]) {
      const { users, invalid, firstInvalid } = await collect(chunked(text, size));
      expect(users, `chunks of ${size}`).toEqual(['user-1', 'user-2']);
      expect(invalid, `chunks of ${size}`).toBe(1);
      expect(firstInvalid).toBe('a'.repeat(64));
    }
  });

  it('a line of exactly MAX_LINE_CHARS is still read (idPattern decides)', async () => {
    const line = 'a'.repeat(MAX_LINE_CHARS);
    const batches: UserBatch[] = [];
    for await (const batch of listUsers(chunked(`${line}\n`, 100), mapping(null), /^a+$/)) batches.push(batch);
    expect(batches.flatMap((batch) => batch.users)).toEqual([line]);
  });

  it('an over-long last line (no newline) is rejected too', async () => {
    const { users, invalid } = await collect(chunked(`user-1\n${'b'.repeat(MAX_LINE_CHARS * 2)}`, 512));
    expect(users).toEqual(['user-1']);
    expect(invalid).toBe(1);
  });
});

describe('listUsers: batches', () => {
  const ids = Array.from({ length: 25 }, (_, i) => `user-${i}`);

  it('yields a batch once it holds batchSize users, then the rest', async () => {
    // One line a chunk: batches are cut at exactly batchSize.
    const source = (async function* () {
      for (const id of ids) yield Buffer.from(`${id}\n`);
    })();
    const { batches, users } = await collect(source, null, 10);
    expect(batches.map((batch) => batch.users.length)).toEqual([10, 10, 5]);
    expect(users).toEqual(ids);
  });

  it('invalid counts travel with the batches and add up', async () => {
    const text = ids.map((id, i) => (i % 5 === 0 ? `bad ${id}` : id)).join('\n');
    const { batches, users, invalid } = await collect(chunked(text, 8), null, 4);
    expect(users).toEqual(ids.filter((_, i) => i % 5 !== 0));
    expect(invalid).toBe(5);
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches.slice(0, -1)) expect(batch.users.length).toBeGreaterThanOrEqual(4);
  });

  it('an empty object yields nothing; one of only invalid lines yields their count', async () => {
    expect((await collect(chunked(''))).batches).toEqual([]);
    expect((await collect(chunked('\n\n# nothing\n'))).batches).toEqual([]);
    expect((await collect(chunked('bad one\nbad two\n'))).batches).toEqual([{ users: [], invalid: 2, firstInvalid: 'bad one' }]);
  });
});
