import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface EquivalentRules {
  flag: string;
  /** Rollout percentage, fractions allowed (12.345 %: flagd weights 12345 / 87655). */
  percentage: number;
  excludedUsers: readonly string[];
  users: readonly string[];
  segment: readonly string[];
}

/**
 * One flag's rules written twice: an embedded rules file (flagd bucketing, lists in list files)
 * and the flagd flag definition that means the same, for the flagd provider. Precedence as the
 * embedded evaluator's: excluded → off; explicit user or segment member (a `$ref`'d evaluator)
 * → on; else `fractional`, bucketed by flagKey + targetingKey, "on" first.
 */
export function writeEquivalentRules(dir: string, rules: EquivalentRules): { rulesFile: string; flagdFile: string } {
  const list = (name: string, ids: readonly string[]): string => {
    writeFileSync(path.join(dir, name), ids.length > 0 ? `${ids.join('\n')}\n` : '');
    return name;
  };
  const rulesFile = path.join(dir, 'rules.yaml');
  writeFileSync(
    rulesFile,
    [
      `flag: ${rules.flag}`,
      'enabled: true',
      `users: ${list('users.txt', rules.users)}`,
      `excludedUsers: ${list('excluded.txt', rules.excludedUsers)}`,
      'segments:',
      `  beta: ${list('segment.txt', rules.segment)}`,
      `percentage: ${rules.percentage}`,
      'bucketing:',
      '  algorithm: flagd',
      '',
    ].join('\n'),
  );
  const onWeight = Math.round(rules.percentage * 1000);
  const userIs = (ids: readonly string[]) => ({ in: [{ var: 'targetingKey' }, ids] });
  const definition = {
    $schema: 'https://flagd.dev/schema/v0/flags.json',
    flags: {
      [rules.flag]: {
        state: 'ENABLED',
        variants: { on: true, off: false },
        defaultVariant: 'off',
        targeting: {
          if: [
            { $ref: 'excluded' },
            'off',
            { or: [userIs(rules.users), { $ref: 'betaSegment' }] },
            'on',
            { fractional: [['on', onWeight], ['off', 100_000 - onWeight]] },
          ],
        },
      },
    },
    $evaluators: { excluded: userIs(rules.excludedUsers), betaSegment: userIs(rules.segment) },
  };
  const flagdFile = path.join(dir, 'flags.flagd.json');
  writeFileSync(flagdFile, JSON.stringify(definition, null, 2));
  return { rulesFile, flagdFile };
}
