import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { loadFlagRules } from '../../src/flags/load-rules.js';
import { RulesFlagChecker } from '../../src/flags/rules-checker.js';
import { FlagSnapshot, type FlagSnapshotInput } from '../../src/flags/snapshot.js';
import { silentLogger } from '../../src/logger.js';
import { tempDir, writeTemp } from '../helpers/files.js';

const load = (location: string, expectedFlag = 'f') =>
  loadFlagRules({ location, expectedFlag, idPattern: /^[a-z0-9-]+$/, logger: silentLogger() });

const snapshot = (overrides: Partial<FlagSnapshotInput> = {}) =>
  new FlagSnapshot({
    flag: 'f',
    enabled: true,
    users: ['allowed'],
    excludedUsers: ['excluded', 'allowed-but-excluded'],
    segments: new Map([['seg', ['member', 'allowed-but-excluded']]]),
    percentage: 0,
    bucketing: { algorithm: 'flipper' },
    unevaluableRules: [],
    ...overrides,
  });

describe('FlagSnapshot precedence', () => {
  it('off → disabled; excluded → disabled; user or segment → enabled; else the rollout', () => {
    const on = snapshot();
    expect(on.evaluateBatch(['allowed', 'member', 'excluded', 'allowed-but-excluded', 'other'])).toEqual([
      'enabled',
      'enabled',
      'disabled',
      'disabled',
      'disabled',
    ]);
    expect(snapshot({ enabled: false }).evaluateBatch(['allowed', 'member'])).toEqual(['disabled', 'disabled']);
    expect(snapshot({ percentage: 100 }).evaluate('other')).toBe('enabled');
    expect(snapshot({ percentage: 100 }).evaluate('excluded')).toBe('disabled');
  });

  it('is unevaluable only for users the offline rules leave out', () => {
    const partial = snapshot({ unevaluableRules: ['groups: admins'] });
    expect(partial.evaluateBatch(['allowed', 'excluded', 'other'])).toEqual(['enabled', 'disabled', 'unevaluable']);
  });

  it('checks in batches through the FlagChecker port', async () => {
    await expect(new RulesFlagChecker(snapshot()).check(['member', 'other'])).resolves.toEqual(['enabled', 'disabled']);
  });
});

describe('flag rules files', () => {
  it('loads YAML with inline and referenced lists (relative to the rules file)', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'team.txt'), '# team\nm1\nm2\n\n');
    writeFileSync(
      path.join(dir, 'rules.yaml'),
      'flag: f\nenabled: true\nusers: [u1]\nexcludedUsers: [m2]\nsegments:\n  team: team.txt\n  inline: [s1]\npercentage: 0\nallowUnknownKeys: true\nextra: kept\n',
    );
    const checker = new RulesFlagChecker(await load(path.join(dir, 'rules.yaml')));
    await expect(checker.check(['u1', 'm1', 'm2', 's1', 'x'])).resolves.toEqual(['enabled', 'enabled', 'disabled', 'enabled', 'disabled']);
    expect(checker.description).toContain('team(2)');
  });

  it('refuses a key it does not know, naming the one meant, unless allowUnknownKeys', async () => {
    const file = writeTemp('rules.yaml', 'flag: f\nenabled: true\npercentage: 100\nexcluded_users: [vip]\n');
    const error = (await load(file).catch((e: unknown) => e)) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.problems).toEqual([expect.stringContaining('excluded_users: unknown key (did you mean excludedUsers?)')]);
    expect(error.exitCode).toBe(2);
  });

  it.each([
    ['a UTF-16 file', Buffer.from('\uFEFFvip-1\nvip-2\n', 'utf16le')],
    ['a list with a line that is not an ID', Buffer.from('vip-1\nnot an id\n')],
  ])('refuses exclusions read from %s (they would widen the rollout), unless told to skip them', async (_, content) => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'excluded.txt'), content);
    writeFileSync(path.join(dir, 'rules.yaml'), 'flag: f\nenabled: true\npercentage: 100\nexcludedUsers: excluded.txt\n');
    const error = (await load(path.join(dir, 'rules.yaml')).catch((e: unknown) => e)) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.problems[0]).toMatch(/^excludedUsers: \d+ lines of .*excluded\.txt are not user IDs \(line \d/);
    const lenient = await loadFlagRules({ location: path.join(dir, 'rules.yaml'), expectedFlag: 'f', idPattern: /^[a-z0-9-]+$/, logger: silentLogger(), allowInvalidListEntries: true });
    expect(lenient.evaluate('someone')).toBe('enabled');
  });

  it('refuses a referenced list that cannot be read (exit 2, naming the list)', async () => {
    const file = writeTemp('rules.yaml', 'flag: f\nenabled: true\nsegments:\n  team: missing.txt\n');
    const error = (await load(file).catch((e: unknown) => e)) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.exitCode).toBe(2);
    expect(error.problems[0]).toMatch(/^segments\.team: cannot read .*missing\.txt/);
  });

  it('loads JSON, gzipped or not', async () => {
    const json = JSON.stringify({ flag: 'f', enabled: true, percentage: 100, bucketing: { algorithm: 'unleash', groupId: 'g' } });
    for (const gzip of [false, true]) {
      const snap = await load(writeTemp('rules.json', json, { gzip }));
      expect(snap.evaluate('anyone')).toBe('enabled');
    }
  });

  it('names every bad field, with the file', async () => {
    const file = writeTemp('rules.yaml', 'flag: f\nenabled: "yes"\npercentage: 140\nusers: 5\nsegments:\n  s: [1]\n');
    const error = await load(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    const problems = (error as ValidationError).problems.join('\n');
    for (const field of ['enabled:', 'percentage:', 'users:', 'segments.s']) expect(problems).toContain(field);
    expect((error as ValidationError).message).toContain(file);
    expect((error as ValidationError).exitCode).toBe(2);
  });

  it('refuses an unknown bucketing algorithm, listing the known ones', async () => {
    const file = writeTemp('rules.yaml', 'flag: f\nenabled: true\nbucketing:\n  algorithm: statsig\n');
    await expect(load(file)).rejects.toThrow(/bucketing\.algorithm: must be one of: flipper, unleash, launchdarkly, flagd/);
  });

  it('refuses rules written for another flag', async () => {
    await expect(load(writeTemp('r.yaml', 'flag: other\nenabled: true\n'))).rejects.toThrow('flag: is "other" but the configured flag is "f"');
  });

  it('reports YAML syntax errors and missing files with their location', async () => {
    const file = writeTemp('r.yaml', 'flag: [unclosed\n');
    await expect(load(file)).rejects.toThrow(`flag rules ${file} is invalid`);
    await expect(load(path.join(tempDir(), 'none.yaml'))).rejects.toThrow('no such file');
  });

  it('marks percentage-of-time and code-defined groups as unevaluable', async () => {
    const snap = await load(writeTemp('r.yaml', 'flag: f\nenabled: true\nusers: [u1]\npercentageOfTime: 10\ngroups: [admins]\n'));
    expect(snap.unevaluableRules).toEqual(['percentageOfTime: 10', 'groups: admins']);
    expect(snap.evaluateBatch(['u1', 'u2'])).toEqual(['enabled', 'unevaluable']);
  });
});

describe('rules files from editors and exporters', () => {
  it('reads a JSON snapshot over the YAML limit that starts with a byte order mark', async () => {
    const users = Array.from({ length: 90_000 }, (_, i) => `user-${i}`);
    const file = writeTemp('rules.json', `\uFEFF${JSON.stringify({ flag: 'f', enabled: true, users })}`);
    const snapshot = await load(file);
    await expect(new RulesFlagChecker(snapshot).check(['user-89999', 'nobody'])).resolves.toEqual(['enabled', 'disabled']);
  });
});
