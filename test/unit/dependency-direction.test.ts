import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/load.js';

/**
 * Dependencies go one way: src/cli and src/daemon → strategies/ → the rest of src/ (the
 * pipeline, the ports and their adapters, config, runtime…). A strategy may use anything below
 * it but never the commands or the daemon that pick it; nothing below may know the strategies or
 * the commands. Read from the import statements themselves (static, `export … from`, dynamic
 * `import()`), as the TypeScript scanner sees them, so comments and strings do not count.
 */

type Layer = 'top' | 'strategies' | 'lower';

/** The directories the commands and the daemon live in: the only ones that may import strategies/. */
const TOP = ['src/cli', 'src/daemon'];

function layerOf(file: string): Layer | 'outside' {
  const relative = path.relative(PACKAGE_ROOT, file).split(path.sep).join('/');
  if (relative.startsWith('strategies/')) return 'strategies';
  if (TOP.some((dir) => relative.startsWith(`${dir}/`))) return 'top';
  if (relative.startsWith('src/')) return 'lower';
  return 'outside';
}

/** Which imports break the direction, as `importer → imported` (paths from the package root). */
function violations(file: string, source: string): string[] {
  const from = layerOf(file);
  const found: string[] = [];
  for (const { fileName } of ts.preProcessFile(source, true, true).importedFiles) {
    if (!fileName.startsWith('.')) continue; // packages and node: builtins sit below every layer
    const target = path.resolve(path.dirname(file), fileName);
    const to = layerOf(target);
    const forbidden = (from === 'lower' && (to === 'strategies' || to === 'top')) || (from === 'strategies' && to === 'top');
    if (forbidden) found.push(`${path.relative(PACKAGE_ROOT, file)} → ${path.relative(PACKAGE_ROOT, target)}`);
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe('dependency direction', () => {
  const files = [...sourceFiles(path.join(PACKAGE_ROOT, 'src')), ...sourceFiles(path.join(PACKAGE_ROOT, 'strategies'))];

  it('reads every layer', () => {
    const layers = new Set(files.map(layerOf));
    expect([...layers].sort()).toEqual(['lower', 'strategies', 'top']);
    // The brief's lower layers, named so that a rename that left them out of the scan shows here.
    for (const dir of ['pipeline', 'state', 'send', 'sink', 'flags', 'candidates', 'inputs', 'safety', 'config', 'observability', 'investigate', 'backfill', 'runtime']) {
      expect(files.some((file) => file.startsWith(path.join(PACKAGE_ROOT, 'src', dir) + path.sep)), `src/${dir}`).toBe(true);
    }
  });

  it('src/ below the commands never imports strategies/, src/cli or src/daemon; strategies/ never imports src/cli or src/daemon', () => {
    const found = files.flatMap((file) => violations(file, readFileSync(file, 'utf8')));
    expect(found).toEqual([]);
  });

  it('catches each kind of import that breaks the direction, and only those', () => {
    const pipelineFile = path.join(PACKAGE_ROOT, 'src/pipeline/example.ts');
    const strategyFile = path.join(PACKAGE_ROOT, 'strategies/example.ts');
    const daemonFile = path.join(PACKAGE_ROOT, 'src/daemon/example.ts');
    const wrongWay = [
      "import { pollingStrategy } from '../../strategies/polling.js';",
      "export type { Strategy } from '../../strategies/types.js';",
      "const { Daemon } = await import('../daemon/daemon.js');",
    ].join('\n');
    expect(violations(pipelineFile, wrongWay)).toHaveLength(3);
    expect(violations(strategyFile, "import type { Daemon } from '../src/daemon/daemon.js';\nimport { runDetection } from '../src/pipeline/detection.js';")).toEqual([
      `strategies/example.ts → ${path.join('src', 'daemon', 'daemon.js')}`,
    ]);
    expect(violations(daemonFile, "import { findStrategy } from '../../strategies/index.js';\nimport { ForgetGuard } from '../pipeline/forget-guard.js';")).toEqual([]);
    expect(violations(pipelineFile, "// import { pollingStrategy } from '../../strategies/polling.js';\nconst text = \"from '../../strategies/x.js'\";")).toEqual([]);
  });
});
