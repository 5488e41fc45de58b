/**
 * The JSONPath subset that investigation writes into a mapping, evaluated against a document:
 * `$`, `.name`, `['any name']`, `[*]` (every element) and `[?(@.key=='value')]` (the elements
 * whose field equals a string). Anything else is refused when the path is compiled, so a mapping
 * edited by hand fails at start, not message by message.
 */
export type PathStep = { kind: 'field'; name: string } | { kind: 'all' } | { kind: 'filter'; field: string; equals: string };

const STEP = /^(?:\.([A-Za-z_][A-Za-z0-9_]*)|\['((?:[^'\\]|\\.)*)'\]|\[\*\]|\[\?\(@\.([A-Za-z_][A-Za-z0-9_]*)=='((?:[^'\\]|\\.)*)'\)\])/;

export function compilePath(path: string): PathStep[] {
  if (!path.startsWith('$')) throw new Error(`JSONPath "${path}" must start with $`);
  const steps: PathStep[] = [];
  let rest = path.slice(1);
  while (rest.length > 0) {
    const match = STEP.exec(rest);
    if (!match) throw new Error(`JSONPath "${path}": cannot read "${rest}" (supported: .name, ['name'], [*], [?(@.field=='value')])`);
    const [whole, dotted, quoted, filterField, filterValue] = match;
    if (dotted !== undefined) steps.push({ kind: 'field', name: dotted });
    else if (quoted !== undefined) steps.push({ kind: 'field', name: unescape(quoted) });
    else if (filterField !== undefined) steps.push({ kind: 'filter', field: filterField, equals: unescape(filterValue ?? '') });
    else steps.push({ kind: 'all' });
    rest = rest.slice(whole.length);
  }
  return steps;
}

/** Every value the path reaches in `document` (none when a step finds nothing). */
export function select(document: unknown, steps: readonly PathStep[]): unknown[] {
  let current: unknown[] = [document];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const value of current) {
      if (step.kind === 'field') {
        if (isRecord(value) && Object.hasOwn(value, step.name)) next.push(value[step.name]);
      } else if (Array.isArray(value)) {
        for (const element of value) if (step.kind === 'all' || (isRecord(element) && element[step.field] === step.equals)) next.push(element);
      }
    }
    current = next;
  }
  return current;
}

/** Where the values `select` finds sit: each one's parent and key (for a document walk to skip them). */
export function locate(document: unknown, steps: readonly PathStep[]): Array<{ parent: object; key: string | number }> {
  if (steps.length === 0) return [];
  const parents = select(document, steps.slice(0, -1));
  const last = steps[steps.length - 1] as PathStep;
  const found: Array<{ parent: object; key: string | number }> = [];
  for (const parent of parents) {
    if (last.kind === 'field') {
      if (isRecord(parent) && Object.hasOwn(parent, last.name)) found.push({ parent, key: last.name });
    } else if (Array.isArray(parent)) {
      parent.forEach((element: unknown, index) => {
        if (last.kind === 'all' || (isRecord(element) && element[last.field] === last.equals)) found.push({ parent, key: index });
      });
    }
  }
  return found;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}
