import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Writes one line and waits until the stream took it, so nothing is lost at exit. */
export async function writeLine(out: Writable, line: string): Promise<void> {
  if (!out.write(`${line}\n`)) await once(out, 'drain');
}
