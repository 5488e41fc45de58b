import path from 'node:path';
import YAML from 'yaml';
import { splitLines } from '../candidates/line-source.js';
import { FfError, ValidationError, errorMessage } from '../errors.js';
import { openInput, type InputDeps } from '../inputs/open-input.js';
import { resolveS3Reference } from '../inputs/object-store.js';
import type { Logger } from '../logger.js';
import { flagRulesSchema, type FlagRulesFile } from './rules-schema.js';
import { FlagSnapshot } from './snapshot.js';

/** A rules file is configuration, not data: anything larger is a mistake. */
const MAX_RULES_FILE_BYTES = 64 * 1024 * 1024;

export interface LoadRulesOptions {
  location: string;
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
  let value: unknown;
  try {
    value = YAML.parse(text, { prettyErrors: true });
  } catch (error) {
    throw new ValidationError('RULES_INVALID', `flag rules ${location}`, [`not valid YAML/JSON: ${errorMessage(error)}`]);
  }
  const parsed = flagRulesSchema.safeParse(value ?? {});
  if (!parsed.success) {
    throw new ValidationError(
      'RULES_INVALID',
      `flag rules ${location}`,
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return parsed.data;
}

async function readWhole(location: string, deps: InputDeps): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of openInput(location, deps)) {
    size += chunk.length;
    if (size > MAX_RULES_FILE_BYTES) {
      throw new FfError('RULES_INVALID', `flag rules ${location} is larger than ${MAX_RULES_FILE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A referenced list resolves against the rules file's own folder (or stays an s3:// URI). */
function referenceLocation(reference: string, rulesLocation: string): string {
  if (rulesLocation.startsWith('s3://')) return resolveS3Reference(reference, rulesLocation);
  if (reference.startsWith('s3://')) return reference;
  return path.resolve(path.dirname(rulesLocation), reference);
}

async function readIdList(location: string, field: string, options: LoadRulesOptions, deps: InputDeps): Promise<string[]> {
  const ids: string[] = [];
  let invalid = 0;
  const examples: string[] = [];
  for await (const batch of splitLines(openInput(location, deps), location, 10_000)) {
    for (let i = 0; i < batch.ids.length; i++) {
      const id = batch.ids[i] as string;
      if (options.idPattern.test(id)) ids.push(id);
      else if (invalid++ < 5) examples.push(`line ${batch.positions[i]}`);
    }
    for (const rejected of batch.rejected) if (invalid++ < 5) examples.push(`line ${rejected.position}`);
  }
  if (invalid > 0) {
    options.logger.warn({ field, location, invalid, examples }, `ignored ${invalid} invalid IDs in the ${field} list`);
  }
  return ids;
}
