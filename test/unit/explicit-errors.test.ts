import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { readCsvColumn } from '../../src/candidates/csv-source.js';
import { integerOption, sinceOption } from '../../src/cli/options.js';
import { packageVersion } from '../../src/cli/version.js';
import { FfError, ValidationError } from '../../src/errors.js';
import { loadFlagRules } from '../../src/flags/load-rules.js';
import { logLevelFromEnv } from '../../src/log-levels.js';
import { createLogger, errorLine, silentLogger, terminalDestination } from '../../src/logger.js';
import { JournalKnownUsers } from '../../src/state/file/known-users.js';
import { tempDir } from '../helpers/files.js';

// Issue 12, items 5 and 6: each of these mistakes is an explicit error that names the problem
// and where it is.

/** The error a promise rejects with (the test fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

function thrown(call: () => unknown): Error {
  try {
    call();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('LOG_LEVEL', () => {
  it('a level pino does not know is a configuration error (exit 2) naming LOG_LEVEL and the levels', () => {
    const error = thrown(() => logLevelFromEnv({ LOG_LEVEL: 'bogus' }));
    expect(error).toBeInstanceOf(FfError);
    expect((error as FfError).exitCode).toBe(2);
    expect(error.message).toBe('LOG_LEVEL "bogus" is not a log level; use one of: trace, debug, info, warn, error, fatal, silent');
  });

  it('a known level is used; unset or empty means no choice', () => {
    expect(logLevelFromEnv({ LOG_LEVEL: 'debug' })).toBe('debug');
    expect(logLevelFromEnv({ LOG_LEVEL: '' })).toBeUndefined();
    expect(logLevelFromEnv({})).toBeUndefined();
  });

  it('createLogger refuses an unknown level with its own error, not pino’s', () => {
    const error = thrown(() => createLogger('loud'));
    expect(error).toBeInstanceOf(FfError);
    expect(error.message).toBe('log level "loud" is not one of: trace, debug, info, warn, error, fatal, silent');
  });
});

describe('command-line values', () => {
  const limit = integerOption(1, 1000);

  it.each(['-1', '0', '2.5', '1001', '1e3', 'ten', ''])('--limit %j is a usage error naming the range', (value) => {
    const error = thrown(() => limit(value));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toBe(`"${value}" is not a whole number from 1 to 1000`);
  });

  it('--limit takes a whole number in range', () => {
    expect([limit('1'), limit('10'), limit('1000')]).toEqual([1, 10, 1000]);
  });

  it('--since that is neither a duration nor a timestamp is a usage error; good ones pass through', () => {
    const error = thrown(() => sinceOption('yesterday'));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toBe('"yesterday" is neither a duration (15m, 2h, 7d) nor a timestamp');
    expect(['15m', '2026-11-28T00:00:00Z', '1700000000000'].map(sinceOption)).toEqual(['15m', '2026-11-28T00:00:00Z', '1700000000000']);
  });

  it('--version reads the package’s version', () => {
    const manifest = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(packageVersion()).toBe(manifest.version);
  });
});

describe('a CSV header naming the chosen column twice', () => {
  async function readAll(csv: string, column: string): Promise<string[]> {
    const ids: string[] = [];
    const chunks = (async function* () {
      yield Buffer.from(csv);
    })();
    for await (const batch of readCsvColumn(chunks, '/data/users.csv', column, 100)) ids.push(...batch.ids);
    return ids;
  }

  it('is refused naming the file, the column and where the two are (never one picked silently)', async () => {
    const error = await rejection(readAll('id,name,id\nu1,a,u2\n', 'id'));
    expect(error).toBeInstanceOf(FfError);
    expect((error as FfError).code).toBe('INPUT_MALFORMED');
    expect(error.message).toBe('/data/users.csv: the header has 2 columns named "id" (columns 1, 3); rename all but one so the user ID column is unambiguous');
  });

  it('counts names as trimmed, like the lookup does', async () => {
    const error = await rejection(readAll('id , id\nu1,u2\n', 'id'));
    expect(error.message).toContain('2 columns named "id"');
  });

  it('other repeated columns do not matter', async () => {
    expect(await readAll('name,id,name\na,u1,b\nc,u2,d\n', 'id')).toEqual(['u1', 'u2']);
  });
});

describe('a corrupt file-backed state journal', () => {
  function journal(content: string): string {
    const dir = path.join(tempDir(), 'state');
    mkdirSync(dir);
    const file = path.join(dir, 'state.journal');
    writeFileSync(file, content);
    return file;
  }

  it.each([
    ['an ID without its + or -', '+user-1\nuser-2\n', 2, '"user-2"'],
    ['a lone +', '+user-1\n-user-1\n+\n', 3, '"+"'],
    ['text in the middle', '+user-1\n+user-2\n# edited by hand\n+user-3\n', 3, '"# edited by hand"'],
  ])('%s stops every call, naming the file and the line', async (_, content, line, shown) => {
    const file = journal(content);
    const known = new JournalKnownUsers(file);
    for (const call of [() => known.areKnown(['user-2']), () => known.markKnown(['user-9'])]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(FfError);
      expect((error as FfError).code).toBe('STATE_UNAVAILABLE');
      expect(error.message).toBe(
        `state file ${file} is corrupt at line ${line}: ${shown} is not "+<user id>" or "-<user id>"; fix or remove that line (the journal is a log of +id / -id lines)`,
      );
    }
    expect(readFileSync(file, 'utf8')).toBe(content); // nothing appended after the bad line
  });

  it('counts lines across reads and appends, so a line added later is named by its real number', async () => {
    const file = journal('+a\n');
    const known = new JournalKnownUsers(file);
    await known.markKnown(['b', 'c']);
    appendFileSync(file, 'd\n');
    expect((await rejection(known.areKnown(['d']))).message).toContain(`${file} is corrupt at line 4: "d"`);
    await known.close();
  });

  it('still ignores a torn last line (a crash mid-write) and skips blank lines', async () => {
    const file = journal('+user-1\n\n-user-1\n+user-2\n+user-3');
    const known = new JournalKnownUsers(file);
    expect(await known.areKnown(['user-1', 'user-2', 'user-3'])).toEqual([false, true, false]);
    await known.close();
  });
});

describe('flag rules: a list given as a string', () => {
  const rulesFile = (body: string): string => {
    const file = path.join(tempDir(), 'rules.yaml');
    writeFileSync(file, `flag: f\nenabled: true\n${body}`);
    return file;
  };
  const load = (file: string) => loadFlagRules({ location: file, expectedFlag: 'f', idPattern: /^[a-z0-9-]+$/, logger: silentLogger() });

  it.each([
    ['users: user-0001\n', 'users: must be a list (e.g. [user-0001]), or the path of a list file (a name with an extension, ./name, or s3://…); got the string "user-0001"'],
    ['excludedUsers: user-3\n', 'excludedUsers: must be a list (e.g. [user-3]), or the path of a list file (a name with an extension, ./name, or s3://…); got the string "user-3"'],
    ['segments:\n  team: alice\n', 'segments.team: must be a list (e.g. [alice]), or the path of a list file (a name with an extension, ./name, or s3://…); got the string "alice"'],
    ['users: 42\n', 'users: must be a list of user IDs, or the path of a list file (a name with an extension, ./name, or s3://…)'],
    ['users:\n', 'users: must be a list of user IDs, or the path of a list file (a name with an extension, ./name, or s3://…)'],
    ['users: [user-1, 7]\n', 'users: must be a list of user IDs (non-empty strings)'],
    ['groups: admins\n', 'groups: must be a list of group names'],
  ])('%j is RULES_INVALID (exit 2) saying it must be a list', async (body, problem) => {
    const file = rulesFile(body);
    const error = await rejection(load(file));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('RULES_INVALID');
    expect((error as ValidationError).exitCode).toBe(2);
    expect((error as ValidationError).problems).toEqual([problem]);
    expect(error.message).toContain(file);
  });

  it('a string that names a file is still a list by reference', async () => {
    const file = rulesFile('users: ./vips\nexcludedUsers: banned.txt\n');
    writeFileSync(path.join(path.dirname(file), 'vips'), 'vip-1\n');
    writeFileSync(path.join(path.dirname(file), 'banned.txt'), 'vip-2\n');
    const rules = await load(file);
    expect(rules.evaluateBatch(['vip-1', 'vip-2'])).toEqual(['enabled', 'disabled']);
  });

  it('a missing segment file is RULES_INVALID (exit 2), naming the segment and the file once', async () => {
    const file = rulesFile('segments:\n  team: team.txt\n');
    const error = (await rejection(load(file))) as ValidationError;
    expect(error.exitCode).toBe(2);
    expect(error.problems).toEqual([`segments.team: cannot read ${path.join(path.dirname(file), 'team.txt')}: no such file`]);
  });
});

describe('errors on a terminal', () => {
  /** A logger writing through the terminal destination into a string. */
  function terminalLogger(): { logger: pino.Logger; output: () => string } {
    let text = '';
    const logger = pino({ level: 'info' }, terminalDestination({ write: (chunk: string) => (text += chunk) }));
    return { logger, output: () => text };
  }

  it('an error is one line saying what failed and why: no object, no stack', () => {
    const { logger, output } = terminalLogger();
    const cause = new Error('ENOENT: no such file or directory');
    logger.error({ err: new FfError('INPUT_UNREADABLE', 'cannot read /data/users.txt: no such file', { cause }) }, 'backfill failed: cannot read /data/users.txt: no such file');
    expect(output()).toBe('ff-detector: error: backfill failed: cannot read /data/users.txt: no such file\n');
  });

  it('a failed run logged with its summary gives the summary’s reason', () => {
    const { logger, output } = terminalLogger();
    logger.error({ summary: { status: 'failed', error: 'Valkey connect failed at redis://h:1' } }, 'detection run failed');
    expect(output()).toBe('ff-detector: error: detection run failed: Valkey connect failed at redis://h:1\n');
  });

  it('other levels stay pretty-printed with their fields', () => {
    const { logger, output } = terminalLogger();
    logger.info({ runId: 'r-1' }, 'detection run started');
    expect(output()).toContain('detection run started');
    expect(output()).toContain('r-1');
    expect(output()).not.toContain('ff-detector: ');
  });

  it('errorLine adds the error’s message only when the log message does not already say it', () => {
    expect(errorLine({ level: 50, msg: 'admin request failed', err: { message: 'boom' } })).toBe('ff-detector: error: admin request failed: boom\n');
    expect(errorLine({ level: 60, msg: 'out of memory' })).toBe('ff-detector: fatal: out of memory\n');
  });
});
