import path from 'node:path';
import YAML from 'yaml';
import { splitLines } from '../candidates/line-source.js';
import { FfError, ValidationError, errorMessage } from '../errors.js';
import { openInput, type InputDeps } from '../inputs/open-input.js';
import { resolveS3Reference } from '../inputs/object-store.js';
import type { Logger } from '../logger.js';
import { flagRulesSchema, type FlagRulesFile } from './rules-schema.js';
import { FlagSnapshot } from './snapshot.js';

/**
 * A rules file is configuration; big user lists belong in list files (`users: users.txt`), which
 * are streamed. Measured at the default heap (192 MB): the YAML parser needs ≈ 1 KB of heap per
 * inline list item (100,000 users: 102 MB; 200,000: out of memory), JSON.parse ≈ 150 bytes.
 * So a YAML document may hold ≈ 65,000 inline users, a JSON one ≈ 500,000.
 */
const MAX_YAML_RULES_BYTES = 1024 * 1024;
const MAX_JSON_RULES_BYTES = 8 * 1024 * 1024;

export interface LoadRulesOptions {
  location: string;
  /** Skip lines of a referenced list that are not IDs instead of refusing the rules. */
  allowInvalidListEntries?: boolean;
  /** The configured target flag; a rules file for another flag is refused. */
  expectedFlag: string;
  idPattern: RegExp;
  logger: Logger;
}

/** Reads, validates and resolves a flag rules file (YAML or JSON, local or s3://). */
export async function loadFlagRules(options: LoadRulesOptions, deps: InputDeps = {}): Promise<FlagSnapshot> {
  const { location } = options;
  const rules = parseRules(await readWhole(location, deps), location);
  if (rules.flag !== options.expectedFlag) {
    throw new ValidationError('RULES_INVALID', `flag rules ${location}`, [
      `flag: is "${rules.flag}" but the configured flag is "${options.expectedFlag}"`,
    ]);
  }
  const sources = [location];
  const resolveList = (list: string[] | string, field: string): Promise<string[]> => {
    if (typeof list !== 'string') return Promise.resolve(list);
    const reference = referenceLocation(list, location);
    sources.push(reference);
    return readIdList(reference, field, options, deps);
  };

  const segments = new Map<string, string[]>();
  for (const [name, list] of Object.entries(rules.segments)) segments.set(name, await resolveList(list, `segments.${name}`));
  const unevaluableRules: string[] = [];
  if (rules.percentageOfTime > 0) unevaluableRules.push(`percentageOfTime: ${rules.percentageOfTime}`);
  if (rules.groups.length > 0) unevaluableRules.push(`groups: ${rules.groups.join(', ')}`);

  return new FlagSnapshot({
    flag: rules.flag,
    enabled: rules.enabled,
    users: await resolveList(rules.users, 'users'),
    excludedUsers: await resolveList(rules.excludedUsers, 'excludedUsers'),
    segments,
    percentage: rules.percentage,
    bucketing: rules.bucketing,
    unevaluableRules,
    sources,
  });
}

function parseRules(text: string, location: string): FlagRulesFile {
  const value = parseDocument(text, location);
  const parsed = flagRulesSchema.safeParse(value ?? {});
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  const allowUnknown = parsed.success && parsed.data.allowUnknownKeys;
  if (!allowUnknown && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const key of Object.keys(value).filter((name) => !KNOWN_KEYS.includes(name))) {
      const near = KNOWN_KEYS.find((known) => normalise(known) === normalise(key));
      problems.push(`${key}: unknown key${near ? ` (did you mean ${near}?)` : ''}; set allowUnknownKeys: true for a snapshot with extras of its own`);
    }
  }
  if (!parsed.success || problems.length > 0) throw new ValidationError('RULES_INVALID', `flag rules ${location}`, problems);
  return parsed.data;
}

const KNOWN_KEYS = Object.keys(flagRulesSchema.shape);

/** `excluded_users`, `ExcludedUsers` and `excludedUsers` are the same to a person. */
function normalise(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** JSON (an exported snapshot) through JSON.parse, which needs far less memory; else YAML, smaller. */
function parseDocument(withBom: string, location: string): unknown {
  const text = withBom.replace(/^\uFEFF/, ''); // editors on Windows write one; JSON.parse refuses it
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      // Not JSON after all (YAML flow style, a comment): YAML below, if small enough.
      if (Buffer.byteLength(text) > MAX_YAML_RULES_BYTES) throw new ValidationError('RULES_INVALID', `flag rules ${location}`, [`not valid JSON: ${errorMessage(error)}`]);
    }
  }
  if (Buffer.byteLength(text) > MAX_YAML_RULES_BYTES) throw tooLarge(location, MAX_YAML_RULES_BYTES, 'as YAML');
  try {
    return YAML.parse(text, { prettyErrors: true }) as unknown;
  } catch (error) {
    throw new ValidationError('RULES_INVALID', `flag rules ${location}`, [`not valid YAML/JSON: ${errorMessage(error)}`]);
  }
}

async function readWhole(location: string, deps: InputDeps): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of openInput(location, deps)) {
      size += chunk.length;
      if (size > MAX_JSON_RULES_BYTES) throw tooLarge(location, MAX_JSON_RULES_BYTES, 'as JSON');
      chunks.push(chunk);
    }
  } catch (error) {
    // A rules file that does not exist is a configuration mistake (exit 2); one that could not be
    // read this time (a network error, S3 throttling) is worth trying again (exit 1).
    if (error instanceof FfError && error.code === 'INPUT_UNREADABLE' && !error.retryable) throw new FfError('RULES_INVALID', `flag rules: ${error.message}`, { cause: error });
    throw error;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(location: string, limit: number, as: string): FfError {
  return new FfError(
    'RULES_INVALID',
    `flag rules ${location} is larger than ${limit / (1024 * 1024)} MiB, the limit ${as}: keep large user lists in a list file (users: users.txt, one ID per line), which is streamed`,
  );
}

/** A referenced list resolves against the rules file's own folder (or stays an s3:// URI). */
function referenceLocation(reference: string, rulesLocation: string): string {
  if (rulesLocation.startsWith('s3://')) return resolveS3Reference(reference, rulesLocation);
  if (reference.startsWith('s3://')) return reference;
  return path.resolve(path.dirname(rulesLocation), reference);
}

/**
 * A referenced list. One that cannot be read, or holds lines that are not IDs (a UTF-16 file, a
 * CSV by mistake), refuses the rules (exit 2; a daemon keeps its previous rules): the run must not
 * go on with exclusions or segments it could not read. `allowInvalidListEntries` skips such
 * lines with a warning instead.
 */
async function readIdList(location: string, field: string, options: LoadRulesOptions, deps: InputDeps): Promise<string[]> {
  const ids: string[] = [];
  let invalid = 0;
  const examples: string[] = [];
  try {
    for await (const batch of splitLines(openInput(location, deps), location, 10_000)) {
      for (let i = 0; i < batch.ids.length; i++) {
        const id = batch.ids[i] as string;
        if (options.idPattern.test(id)) ids.push(id);
        else if (invalid++ < 5) examples.push(`line ${batch.positions[i]}`);
      }
      for (const rejected of batch.rejected) if (invalid++ < 5) examples.push(`line ${rejected.position}: ${rejected.reason}`);
    }
  } catch (error) {
    // openInput's errors already name the list ("cannot read <list>: no such file"); say it once.
    const problem = error instanceof FfError ? errorMessage(error) : `cannot read ${location}: ${errorMessage(error)}`;
    throw new ValidationError('RULES_INVALID', `flag rules ${options.location}`, [`${field}: ${problem}`]);
  }
  if (invalid > 0 && !options.allowInvalidListEntries) {
    throw new ValidationError('RULES_INVALID', `flag rules ${options.location}`, [
      `${field}: ${invalid} lines of ${location} are not user IDs (${examples.join(', ')}); fix the list, or set flags.allowInvalidListEntries to skip them`,
    ]);
  }
  if (invalid > 0) options.logger.warn({ field, location, invalid, examples }, `ignored ${invalid} invalid IDs in the ${field} list`);
  if (ids.length === 0 && invalid > 0) options.logger.warn({ field, location }, `the ${field} list ${location} holds no valid ID`);
  return ids;
}
