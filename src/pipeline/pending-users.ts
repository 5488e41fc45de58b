import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FfError, errorMessage } from '../errors.js';

/** Spilled users are written in chunks of this many lines. */
const SPILL_CHUNK = 1000;

/** Users per packed string in memory. */
const MEMORY_CHUNK = 1000;

interface SpillFile {
  dir: string;
  file: string;
  handle: FileHandle;
}

/**
 * The users a run will enqueue, gathered while the candidate source is read so that the source
 * can be read to its end and closed before the first send (a Snowflake result or an S3 GET left
 * idle during a long send is cut by the server's timeouts). Up to `memoryLimit` users are kept in
 * memory; the rest go to a file of one JSON string per line in a private directory under
 * `spillDir`, removed by dispose(). A run with a budget never holds more than the budget.
 */
export class PendingUsers {
  /**
   * Users in memory, packed: every MEMORY_CHUNK users become one JSON array string, a few bytes per
   * user instead of a string object and a pointer each (a 10M-candidate run keeps 100,000).
   */
  private readonly packed: string[] = [];
  private current: string[] = [];
  private inMemoryCount = 0;
  private spill: Promise<SpillFile> | undefined;
  private spillBuffer: string[] = [];
  private spilled = 0;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly memoryLimit: number,
    private readonly spillDir: string,
  ) {}

  get size(): number {
    return this.inMemoryCount + this.spilled;
  }

  /** Users written to the spill file (0 while everything fits in memory). */
  get spilledCount(): number {
    return this.spilled;
  }

  /** Keeps a user; waits when the spill file's writes fall behind (back pressure on the reader). */
  async add(userId: string): Promise<void> {
    if (this.inMemoryCount < this.memoryLimit) {
      this.inMemoryCount++;
      this.current.push(userId);
      if (this.current.length >= MEMORY_CHUNK) this.pack();
      return;
    }
    this.spilled++;
    this.spillBuffer.push(`${JSON.stringify(userId)}\n`);
    if (this.spillBuffer.length >= SPILL_CHUNK) await this.flush();
  }

  /**
   * Every user kept, in batches of up to `size`: memory first, then the spill file. Several
   * consumers may share one iterator (an async generator queues their next() calls).
   */
  async *batches(size: number): AsyncGenerator<string[]> {
    this.pack();
    let batch: string[] = [];
    for (const chunk of this.packed) {
      for (const userId of JSON.parse(chunk) as string[]) {
        batch.push(userId);
        if (batch.length < size) continue;
        yield batch;
        batch = [];
      }
    }
    // The last batch from memory may be short; the spill file follows in batches of its own.
    if (batch.length > 0) yield batch;
    if (this.spilled === 0) return;
    batch = [];
    await this.flush();
    const { file } = await (this.spill as Promise<SpillFile>);
    const input = createReadStream(file, 'utf8');
    const lines = createInterface({ input, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        batch.push(JSON.parse(line) as string);
        if (batch.length < size) continue;
        yield batch;
        batch = [];
      }
    } catch (error) {
      throw spillError(`read the spill file ${file}`, error);
    } finally {
      lines.close();
      input.destroy(); // closing the interface leaves the file open
    }
    if (batch.length > 0) yield batch;
  }

  private pack(): void {
    if (this.current.length === 0) return;
    this.packed.push(JSON.stringify(this.current));
    this.current = [];
  }

  /** Closes and removes the spill file, if any. */
  async dispose(): Promise<void> {
    const spill = this.spill;
    this.spill = undefined;
    if (!spill) return;
    const opened = await spill.catch(() => undefined);
    if (!opened) return;
    await this.writes.catch(() => undefined);
    await opened.handle.close().catch(() => undefined);
    await rm(opened.dir, { recursive: true, force: true });
  }

  private flush(): Promise<void> {
    const text = this.spillBuffer.join('');
    this.spillBuffer = [];
    if (text === '') return this.writes;
    const spill = (this.spill ??= this.openSpill());
    // Chained: chunks land in the order they were taken, and a failure reaches every later add.
    this.writes = this.writes.then(async () => {
      const { handle, file } = await spill;
      try {
        await handle.appendFile(text); // writes it all, however many calls that takes
      } catch (error) {
        throw spillError(`write the spill file ${file}`, error);
      }
    });
    return this.writes;
  }

  private async openSpill(): Promise<SpillFile> {
    let dir: string | undefined;
    try {
      dir = await mkdtemp(path.join(this.spillDir, 'ff-detector-pending-'));
      const file = path.join(dir, 'users.jsonl');
      const handle = await open(file, 'w', 0o600);
      return { dir, file, handle };
    } catch (error) {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw spillError(`create a spill file in ${this.spillDir} (enqueue.spillDir)`, error);
    }
  }
}

function spillError(action: string, error: unknown): FfError {
  return new FfError('SPILL_FAILED', `cannot ${action}: ${errorMessage(error)}`, { cause: error });
}
