import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { FfError, errorMessage } from '../../errors.js';
import type { KnownUsers } from '../types.js';

const NEWLINE = 0x0a;

/**
 * The embedded default's known set: an append-only journal of `+id` / `-id` lines (fsynced per
 * write), replayed into memory. Other processes may append to it (a CLI run beside a daemon),
 * so every call first reads what was added since, and starts over when the file was replaced.
 *
 * Only complete lines count: a last line without its newline (a write cut short by a crash) is
 * ignored, and the next writer cuts it off before appending. A complete line that is not `+id` or
 * `-id` (a corrupt or hand-edited journal) stops every call with an error naming the file and the
 * line: taken as an ID, it would mark someone known who never got a message. Compaction
 * (rewriting the journal as the set's members) is done by writers only, which the run lock
 * serialises; read-only commands never change the file.
 */
export class JournalKnownUsers implements KnownUsers {
  private readonly known = new Set<string>();
  /** Bytes of complete lines applied so far, and the file they came from. */
  private position = 0;
  private inode: number | undefined;
  /** Complete lines applied so far (blank ones included): also the number of the last one read. */
  private entries = 0;
  private writer: { handle: FileHandle; inode: number } | undefined;

  constructor(private readonly file: string) {}

  async areKnown(userIds: readonly string[]): Promise<boolean[]> {
    await this.catchUp();
    return userIds.map((id) => this.known.has(id));
  }

  /** Nothing writes `loaded_users` without the worker's Valkey: nobody is loaded. */
  areLoaded(userIds: readonly string[]): Promise<boolean[]> {
    return Promise.resolve(userIds.map(() => false));
  }

  markKnown(userIds: readonly string[]): Promise<void> {
    return this.append(userIds, '+');
  }

  forget(userIds: readonly string[]): Promise<void> {
    return this.append(userIds, '-');
  }

  async *scan(batchSize: number): AsyncIterable<string[]> {
    await this.catchUp();
    const members = [...this.known];
    for (let i = 0; i < members.length; i += batchSize) yield members.slice(i, i + batchSize);
  }

  async count(): Promise<number> {
    await this.catchUp();
    return this.known.size;
  }

  async close(): Promise<void> {
    await this.writer?.handle.close();
    this.writer = undefined;
  }

  /** Applies the lines appended since the last call; rereads the whole file if it was replaced. */
  async catchUp(): Promise<void> {
    try {
      let stats;
      try {
        stats = await stat(this.file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        this.reset(undefined);
        return;
      }
      if (stats.ino !== this.inode || stats.size < this.position) this.reset(stats.ino);
      if (stats.size > this.position) await this.readFrom(this.position);
    } catch (error) {
      if (error instanceof FfError) throw error; // a corrupt line, already named
      throw new FfError('STATE_UNAVAILABLE', `cannot read state file ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
  }

  private reset(inode: number | undefined): void {
    this.known.clear();
    this.position = 0;
    this.entries = 0;
    this.inode = inode;
  }

  private async readFrom(start: number): Promise<void> {
    let pending: Buffer = Buffer.alloc(0);
    for await (const chunk of createReadStream(this.file, { start }) as AsyncIterable<Buffer>) {
      let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      let lineStart = 0;
      for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, lineStart)) {
        this.apply(data.toString('utf8', lineStart, newline));
        this.position += newline + 1 - lineStart;
        lineStart = newline + 1;
      }
      data = data.subarray(lineStart);
      pending = Buffer.from(data); // a line still without its newline: wait for more, or ignore
    }
  }

  private apply(line: string): void {
    const entry = line.replace(/\r$/, '');
    // A blank line (a hand edit) names nobody: skipped. Anything else must be an operation on an ID.
    if (entry !== '') {
      const [op, id] = [entry[0], entry.slice(1)];
      if ((op !== '+' && op !== '-') || id === '') throw this.corrupt(entry);
      if (op === '+') this.known.add(id);
      else this.known.delete(id);
    }
    this.entries++;
  }

  private corrupt(entry: string): FfError {
    const shown = entry.length > 80 ? `${entry.slice(0, 80)}…` : entry;
    return new FfError(
      'STATE_UNAVAILABLE',
      `state file ${this.file} is corrupt at line ${this.entries + 1}: ${JSON.stringify(shown)} is not "+<user id>" or "-<user id>"; ` +
        'fix or remove that line (the journal is a log of +id / -id lines)',
    );
  }

  private async append(userIds: readonly string[], op: '+' | '-'): Promise<void> {
    if (userIds.length === 0) return;
    await this.catchUp();
    try {
      const writer = await this.openWriter();
      const text = userIds.map((id) => `${op}${id}\n`).join('');
      await writer.write(text);
      await writer.datasync();
      this.position += Buffer.byteLength(text);
    } catch (error) {
      throw new FfError('STATE_UNAVAILABLE', `cannot write state file ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
    for (const id of userIds) {
      if (op === '+') this.known.add(id);
      else this.known.delete(id);
      this.entries++;
    }
  }

  /**
   * The append handle, opened on the first write (read-only use leaves no file behind). Before
   * it: a torn last line is cut off, and a journal grown well past the set is compacted.
   */
  private async openWriter(): Promise<FileHandle> {
    if (this.writer && this.writer.inode === this.inode) return this.writer.handle;
    await this.writer?.handle.close();
    this.writer = undefined;
    await mkdir(path.dirname(this.file), { recursive: true });
    if (this.inode !== undefined && (await stat(this.file)).size > this.position) await truncate(this.file, this.position);
    if (this.entries > 2 * this.known.size + 1000) await this.compact();
    const handle = await open(this.file, 'a');
    const { ino } = await handle.stat();
    if (this.inode === undefined) this.inode = ino; // created just now, empty
    this.writer = { handle, inode: ino };
    return handle;
  }

  private async compact(): Promise<void> {
    const temporary = `${this.file}.${process.pid}.tmp`;
    const text = [...this.known].map((id) => `+${id}\n`).join('');
    const handle = await open(temporary, 'w');
    try {
      await handle.write(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
    this.inode = (await stat(this.file)).ino;
    this.position = Buffer.byteLength(text);
    this.entries = this.known.size;
  }
}
