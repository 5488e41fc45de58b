import { mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FfError, errorMessage } from '../errors.js';
import { FileLock } from './file-lock.js';
import type { StateStore } from './types.js';

/**
 * The embedded default's state: the known set kept in memory and persisted as an append-only
 * journal of `+id` / `-id` lines (fsynced per write), compacted when it grows. For one process
 * and modest lists; production uses Valkey. Nothing writes `loaded_users` here, so no user is
 * ever reported as loaded.
 */
export class FileStateStore implements StateStore {
  readonly description: string;
  private readonly known = new Set<string>();
  private journal: FileHandle | undefined;
  private opened: Promise<void> | undefined;
  private readonly locks = new FileLock();

  constructor(private readonly file: string) {
    this.description = `file ${file}`;
  }

  ping(): Promise<void> {
    this.opened ??= this.open();
    return this.opened;
  }

  async areKnown(userIds: readonly string[]): Promise<boolean[]> {
    await this.ping();
    return userIds.map((id) => this.known.has(id));
  }

  areLoaded(userIds: readonly string[]): Promise<boolean[]> {
    return Promise.resolve(userIds.map(() => false));
  }

  async markKnown(userIds: readonly string[]): Promise<void> {
    await this.append(userIds, '+');
    for (const id of userIds) this.known.add(id);
  }

  async forget(userIds: readonly string[]): Promise<void> {
    await this.append(userIds, '-');
    for (const id of userIds) this.known.delete(id);
  }

  /** Lock keys become files beside the journal (`state.journal.<key>.lock`). */
  async tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    await mkdir(path.dirname(this.file), { recursive: true });
    return this.locks.tryLock(this.lockFile(key), token, ttlMs);
  }

  renewLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.locks.renewLock(this.lockFile(key), token, ttlMs);
  }

  unlock(key: string, token: string): Promise<void> {
    return this.locks.unlock(this.lockFile(key), token);
  }

  /** Run history lives beside the journal, one JSON summary per line, newest last. */
  async pushHistory(entry: string, keep: number): Promise<void> {
    const lines = [...(await this.readHistory(keep - 1)).reverse(), entry];
    await mkdir(path.dirname(this.file), { recursive: true });
    const temporary = `${this.historyFile}.tmp`;
    await writeFile(temporary, `${lines.join('\n')}\n`);
    await rename(temporary, this.historyFile);
  }

  async readHistory(count: number): Promise<string[]> {
    try {
      const lines = (await readFile(this.historyFile, 'utf8')).split('\n').filter(Boolean);
      return lines.slice(-count).reverse();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  private get historyFile(): string {
    return `${this.file}.runs.jsonl`;
  }

  async close(): Promise<void> {
    await this.journal?.close();
    this.journal = undefined;
  }

  private lockFile(key: string): string {
    return `${this.file}.${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`;
  }

  private async append(userIds: readonly string[], op: '+' | '-'): Promise<void> {
    if (userIds.length === 0) return;
    await this.ping();
    try {
      // Created on the first write, so read-only use (--dry-run, check) leaves no file behind.
      this.journal ??= await this.createJournal();
      const journal = this.journal;
      await journal.write(userIds.map((id) => `${op}${id}\n`).join(''));
      await journal.datasync();
    } catch (error) {
      throw new FfError('STATE_UNAVAILABLE', `cannot write state file ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
  }

  private async createJournal(): Promise<FileHandle> {
    await mkdir(path.dirname(this.file), { recursive: true });
    return open(this.file, 'a');
  }

  private async open(): Promise<void> {
    try {
      const entries = await this.replay();
      if (entries > 2 * this.known.size + 1000) await this.compact();
    } catch (error) {
      this.opened = undefined;
      throw new FfError('STATE_UNAVAILABLE', `cannot open state file ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
  }

  private async replay(): Promise<number> {
    let entries = 0;
    try {
      const lines = createInterface({ input: createReadStream(this.file, 'utf8'), crlfDelay: Infinity });
      for await (const line of lines) {
        if (line.startsWith('+')) this.known.add(line.slice(1));
        else if (line.startsWith('-')) this.known.delete(line.slice(1));
        entries++;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return entries;
  }

  private async compact(): Promise<void> {
    const temporary = `${this.file}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.write([...this.known].map((id) => `+${id}\n`).join(''));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
  }
}
