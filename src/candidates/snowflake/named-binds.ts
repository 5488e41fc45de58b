import { FfError } from '../../errors.js';

export type BindValue = string | number | boolean | null;

/**
 * Turns `:name` placeholders into the driver's positional `?` binds, so the query is configured
 * with readable names while values always travel as binds, never spliced into the SQL text.
 * Quoted strings, quoted identifiers, comments and `::` casts are left alone.
 */
export function toPositionalBinds(sql: string, values: Record<string, BindValue>): { sqlText: string; binds: BindValue[] } {
  const binds: BindValue[] = [];
  const unknown = new Set<string>();
  let sqlText = '';
  let i = 0;
  while (i < sql.length) {
    const char = sql[i] as string;
    const skipTo = skipEnd(sql, i);
    if (skipTo > i) {
      sqlText += sql.slice(i, skipTo);
      i = skipTo;
    } else if (char === ':' && sql[i + 1] === ':') {
      sqlText += '::';
      i += 2;
    } else if (char === ':' && /[A-Za-z_]/.test(sql[i + 1] ?? '')) {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1))?.[0] as string;
      if (!(name in values)) unknown.add(name);
      binds.push(values[name] ?? null);
      sqlText += '?';
      i += 1 + name.length;
    } else {
      sqlText += char;
      i++;
    }
  }
  if (unknown.size > 0) {
    throw new FfError('CONFIG_INVALID', `candidates.snowflake.query uses bind variables with no value: ${[...unknown].map((n) => `:${n}`).join(', ')}`);
  }
  return { sqlText, binds };
}

/** End of a quoted string, quoted identifier or comment starting at `i`, else `i`. */
function skipEnd(sql: string, i: number): number {
  const char = sql[i];
  if (char === "'" || char === '"') {
    let j = i + 1;
    while (j < sql.length) {
      if (sql[j] === char && sql[j + 1] === char) j += 2; // doubled quote
      else if (sql[j] === char) return j + 1;
      else j++;
    }
    return sql.length;
  }
  if (char === '-' && sql[i + 1] === '-') {
    const end = sql.indexOf('\n', i);
    return end === -1 ? sql.length : end;
  }
  if (char === '/' && sql[i + 1] === '*') {
    const end = sql.indexOf('*/', i + 2);
    return end === -1 ? sql.length : end + 2;
  }
  return i;
}
