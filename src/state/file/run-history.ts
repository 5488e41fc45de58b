import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunHistory } from '../types.js';

/** Run summaries beside the journal, one JSON line each, newest last; replaced atomically. */
export class FileRunHistory implements RunHistory {
  constructor(private readonly file: string) {}

  async push(entry: string, keep: number): Promise<void> {
    const lines = [...(await this.read(keep - 1)).reverse(), entry];
    await mkdir(path.dirname(this.file), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    await writeFile(temporary, `${lines.join('\n')}\n`);
    await rename(temporary, this.file);
  }

  async read(count: number): Promise<string[]> {
    try {
      if (count <= 0) return [];
      const lines = (await readFile(this.file, 'utf8')).split('\n').filter(Boolean);
      return lines.slice(-count).reverse();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }
}
