import { createHash } from 'node:crypto';

/**
 * Keys whose values change with every message without changing who is enabled: event ids, times,
 * versions. Left out of the rules digest, or every snapshot would look like a rules change.
 */
const VOLATILE_KEY = /^(?:id|event_?id|message_?id|time|timestamp|ts|version|revision|etag|seq|sequence|specversion|(?:created|updated|modified|last_?modified|last_?updated)(?:_?at|_?on|_?time)?)$/i;

/**
 * Keys of the parameters that decide who falls in a percentage rollout (Unleash groupId and
 * stickiness, LaunchDarkly salt and seed, the hash algorithm): a new value re-draws the cohort.
 */
const BUCKETING_KEY = /^(?:salt|seed|group_?id|hash_?key|bucket_?by|stickiness|algorithm|hash_?algorithm|bucketing)$/i;

export interface Digests {
  /** Everything in the document but the skipped values, volatile keys and bucketing parameters. */
  rules: string;
  /** The bucketing parameters found (null: none). */
  bucketing: string | null;
}

/**
 * Digests of a flag document, for telling a change of segments, rules or bucketing from a change
 * of the explicit users alone: `skip` holds the values the mapping reads (users, switch,
 * percentage), which are compared one by one instead. Keys are sorted, so key order never counts.
 */
export function digestsOf(document: unknown, skip: ReadonlyArray<{ parent: object; key: string | number }>): Digests {
  const skipped = new Map<object, Set<string | number>>();
  for (const { parent, key } of skip) {
    let keys = skipped.get(parent);
    if (!keys) skipped.set(parent, (keys = new Set()));
    keys.add(key);
  }
  const bucketing: string[] = [];
  const walk = (value: unknown, path: string): unknown => {
    if (Array.isArray(value)) {
      const keys = skipped.get(value);
      // Skipped elements are dropped, not replaced: a list of users growing must not show as a rules change.
      const kept: unknown[] = [];
      value.forEach((element, index) => {
        if (!keys?.has(index)) kept.push(walk(element, `${path}[${index}]`));
      });
      return kept;
    }
    if (typeof value !== 'object' || value === null) return value;
    const keys = skipped.get(value);
    const kept: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (keys?.has(key) || VOLATILE_KEY.test(key)) continue;
      const child = (value as Record<string, unknown>)[key];
      if (BUCKETING_KEY.test(key)) bucketing.push(`${path}.${key}=${JSON.stringify(walk(child, `${path}.${key}`))}`);
      else kept[key] = walk(child, `${path}.${key}`);
    }
    return kept;
  };
  const rest = walk(document, '$');
  return { rules: hash(JSON.stringify(rest) ?? ''), bucketing: bucketing.length > 0 ? hash(bucketing.sort().join('\n')) : null };
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}
