import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** A fresh temporary folder per call. */
export function tempDir(prefix = 'ffd-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function writeTemp(name: string, content: string | Buffer, options: { gzip?: boolean } = {}): string {
  const file = path.join(tempDir(), name);
  writeFileSync(file, options.gzip ? gzipSync(content) : content);
  return file;
}
