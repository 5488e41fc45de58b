import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The version in the package's package.json: the nearest one above this module, whether it runs
 * from src/ or dist/src/ (config/load.ts finds the package root the same way; not imported from
 * there, because --version must not load the config schema).
 */
export function packageVersion(start: string = import.meta.dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
