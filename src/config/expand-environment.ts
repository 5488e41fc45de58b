import type { JsonValue } from '../flags/openfeature-schema.js';

/**
 * Replaces `${NAME}` in every string of `value` by the environment variable NAME, at load time
 * (src/config/load.ts): adapters never read the environment themselves. A variable that is not set is
 * named in `missing` (by its path in the config) rather than silently becoming "".
 */
export function expandEnvironment(value: JsonValue, env: NodeJS.ProcessEnv, at: string, missing: string[]): JsonValue {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, variable: string) => {
      const found = env[variable];
      if (found === undefined) missing.push(`${at}: environment variable ${variable} is not set`);
      return found ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => expandEnvironment(item, env, `${at}.${index}`, missing));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expandEnvironment(item, env, `${at}.${key}`, missing)]));
  }
  return value;
}
