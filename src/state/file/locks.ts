import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Locks, Permits } from '../types.js';

interface LockRecord {
  token: string;
  expiresAt: number;
  pid: number;
}

/** A mutex older than this was left by a process that died while holding it (held ~1 ms). */
const STALE_MUTEX_MS = 5000;
const MUTEX_ATTEMPTS = 200;
const MUTEX_RETRY_MS = 5;

/**
 * The file store's leases: one JSON file per key beside the journal, for processes on one
 * machine. Taking and releasing a lock happen under a short mutex (a file created exclusively),
 * so checking the current owner and replacing or removing it is one step: two contenders never
 * both win, and an expired lock is taken over by one of them. A lock file is written aside and
 * renamed into place, so it is never seen half-written. Renewal needs no mutex: the holder only
 * renews a lock that is not about to expire, and only an expired lock is taken over.
 */
export class FileLocks implements Locks {
  constructor(private readonly base: string) {}

  async tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const file = this.fileOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    return this.underMutex(file, async () => {
      const current = await readRecord(file);
      if (current && current.expiresAt > Date.now()) return false;
      await writeAtomically(file, { token, expiresAt: Date.now() + ttlMs, pid: process.pid });
      return true;
    });
  }

  async renewLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const file = this.fileOf(key);
    const current = await readRecord(file);
    // A lock about to expire may be taken over while we rewrite it: count it as lost instead.
    if (current?.token !== token || current.expiresAt - Date.now() < Math.min(1000, ttlMs / 10)) return false;
    await writeAtomically(file, { ...current, expiresAt: Date.now() + ttlMs });
    return true;
  }

  async unlock(key: string, token: string): Promise<void> {
    const file = this.fileOf(key);
    await this.underMutex(file, async () => {
      if ((await readRecord(file))?.token === token) await unlink(file).catch(() => undefined);
      return true;
    });
  }

  private fileOf(key: string): string {
    return `${this.base}.${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`;
  }

  /** Runs `work` while holding `<lock>.mutex`; false when the mutex stays busy. */
  private async underMutex(file: string, work: () => Promise<boolean>): Promise<boolean> {
    const mutex = `${file}.mutex`;
    for (let attempt = 0; attempt < MUTEX_ATTEMPTS; attempt++) {
      try {
        await (await open(mutex, 'wx')).close();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const age = await stat(mutex).then((stats) => Date.now() - stats.mtimeMs, () => 0);
        if (age > STALE_MUTEX_MS) await unlink(mutex).catch(() => undefined);
        else await new Promise((resolve) => setTimeout(resolve, MUTEX_RETRY_MS));
        continue;
      }
      try {
        return await work();
      } finally {
        await unlink(mutex).catch(() => undefined);
      }
    }
    return false;
  }
}

async function writeAtomically(file: string, record: LockRecord): Promise<void> {
  const aside = `${file}.${randomUUID()}.new`;
  await writeFile(aside, JSON.stringify(record));
  await rename(aside, file);
}

async function readRecord(file: string): Promise<LockRecord | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<LockRecord>;
    return typeof parsed.token === 'string' && typeof parsed.expiresAt === 'number' ? (parsed as LockRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Permits as files beside the journal, holding their expiry; taken by renaming them away first. */
export class FilePermits implements Permits {
  constructor(private readonly base: string) {}

  async grant(key: string, ttlMs: number): Promise<void> {
    const file = this.fileOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeAtomically(file, { token: 'permit', expiresAt: Date.now() + ttlMs, pid: process.pid });
  }

  async take(key: string): Promise<boolean> {
    const taken = `${this.fileOf(key)}.${randomUUID()}.taken`;
    try {
      await rename(this.fileOf(key), taken); // one taker wins
    } catch {
      return false;
    }
    const record = await readRecord(taken);
    await unlink(taken).catch(() => undefined);
    return record !== undefined && record.expiresAt > Date.now();
  }

  private fileOf(key: string): string {
    return `${this.base}.${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.permit`;
  }
}
