import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** A named pipe: a candidate "file" whose content the test writes while the run reads it. */
export function mkfifoSync(dir: string, name: string): string {
  const file = path.join(dir, name);
  execFileSync('mkfifo', [file]);
  return file;
}
