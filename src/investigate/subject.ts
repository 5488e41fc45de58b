import { MAX_DEPTH } from './field-stats.js';

// Whether a document is about the flag: the flag must be its subject, not a mention.

/** Fields that name what a document is about (CloudEvents' `subject` included). */
const NAME_KEY = /^(name|key|id|flag|feature|subject|flag_?key|flag_?name|feature_?key|feature_?name)$/i;
/** Where another flag mentions this one without being about it. */
const MENTION = /prerequisite|depend|require|parent|related/i;

/**
 * Paths where the document names the flag as its subject: a name or key field whose value is
 * the flag, or an object key that is the flag (a map of flags) — never a flag that lists it as a
 * prerequisite. Names that contain the flag's without being it go to `nearMisses`.
 */
export function findFlag(value: unknown, flag: string, path: string, nearMisses: Set<string>, found: string[] = [], key = '', depth = 0): string[] {
  if (found.length > 20 || MENTION.test(path) || depth > MAX_DEPTH) return found;
  if (typeof value === 'string') {
    if (value === flag && NAME_KEY.test(key)) found.push(path);
    else if (value !== flag && value.includes(flag) && nearMisses.size < 50) nearMisses.add(value);
  } else if (Array.isArray(value)) value.forEach((element) => findFlag(element, flag, `${path}[*]`, nearMisses, found, key, depth + 1));
  else if (typeof value === 'object' && value !== null) {
    for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
      const childPath = `${path}.${/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `['${name}']`}`;
      if (name === flag) found.push(childPath);
      else if (name.includes(flag) && nearMisses.size < 50) nearMisses.add(name);
      findFlag(child, flag, childPath, nearMisses, found, name, depth + 1);
    }
  }
  return [...new Set(found)];
}

/** The value at a `$.a.b['c']` path (no wildcards). */
export function subtree(document: unknown, path: string): unknown {
  let current = document;
  for (const part of path.slice(1).match(/\.([A-Za-z_][A-Za-z0-9_]*)|\['((?:[^'\\]|\\.)*)'\]/g) ?? []) {
    const key = part.startsWith('.') ? part.slice(1) : part.slice(2, -2).replace(/\\(.)/g, '$1');
    current = (current as Record<string, unknown> | undefined)?.[key];
  }
  return current;
}
