import { appendFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BackfillJobRecord, BackfillJobStore, NewBackfillJob } from '../backfill-jobs.js';

type StoredRecord = Omit<BackfillJobRecord, 'remaining'>;

/**
 * The backfill job of the file-backed default, in a folder beside the journal: `job.json` (the
 * record, replaced atomically), `users` (written once), `sent` and `failed` (appended per batch).
 * The users remaining are those in `users` and in neither log. For one machine.
 */
export class FileBackfillJobs implements BackfillJobStore {
  /** The remaining users of the job this process works on, kept to count repeats once. */
  private pending: { jobId: string; users: Set<string> } | undefined;

  constructor(private readonly dir: string) {}

  async current(): Promise<BackfillJobRecord | null> {
    const record = await this.readRecord();
    if (!record) return null;
    return { ...record, remaining: Math.max(0, record.total - record.sent - record.failed) };
  }

  async create(job: NewBackfillJob): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    const now = new Date().toISOString();
    this.pending = undefined;
    await this.writeRecord({ ...job, status: 'preparing', total: 0, sent: 0, failed: 0, invalid: 0, duplicates: 0, createdAt: now, updatedAt: now, error: null });
  }

  async fill(jobId: string, userIds: readonly string[], counts: { invalid: number; duplicates: number }): Promise<void> {
    const record = await this.readRecord();
    if (record?.jobId !== jobId) return;
    const temporary = this.file('users.tmp');
    await writeFile(temporary, userIds.length > 0 ? `${userIds.join('\n')}\n` : '');
    await rename(temporary, this.file('users'));
    await this.writeRecord({ ...record, ...counts, status: 'running', total: userIds.length, updatedAt: new Date().toISOString() });
  }

  async remaining(jobId: string): Promise<string[]> {
    if ((await this.readRecord())?.jobId !== jobId) return [];
    return [...(await this.pendingOf(jobId))];
  }

  recordSent(jobId: string, userIds: readonly string[]): Promise<number> {
    return this.record(jobId, userIds, 'sent');
  }

  recordFailed(jobId: string, userIds: readonly string[]): Promise<number> {
    return this.record(jobId, userIds, 'failed');
  }

  async update(jobId: string, fields: Partial<Pick<BackfillJobRecord, 'status' | 'error' | 'owner'>>): Promise<void> {
    const record = await this.readRecord();
    if (record?.jobId === jobId) await this.writeRecord({ ...record, ...fields, updatedAt: new Date().toISOString() });
  }

  private async record(jobId: string, userIds: readonly string[], log: 'sent' | 'failed'): Promise<number> {
    const record = await this.readRecord();
    if (userIds.length === 0 || record?.jobId !== jobId) return 0;
    const pending = await this.pendingOf(jobId);
    const fresh = userIds.filter((id) => pending.delete(id));
    if (fresh.length === 0) return 0;
    await appendFile(this.file(log), `${fresh.join('\n')}\n`);
    await this.writeRecord({ ...record, [log]: record[log] + fresh.length, updatedAt: new Date().toISOString() });
    return fresh.length;
  }

  private async pendingOf(jobId: string): Promise<Set<string>> {
    if (this.pending?.jobId === jobId) return this.pending.users;
    const [users, sent, failed] = await Promise.all(['users', 'sent', 'failed'].map((name) => this.readLines(name)));
    const done = new Set([...(sent ?? []), ...(failed ?? [])]);
    this.pending = { jobId, users: new Set((users ?? []).filter((id) => !done.has(id))) };
    return this.pending.users;
  }

  private async readLines(name: string): Promise<string[]> {
    try {
      // Only complete lines: a log line cut short by a crash names nobody.
      const text = await readFile(this.file(name), 'utf8');
      return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  private async readRecord(): Promise<StoredRecord | null> {
    try {
      return JSON.parse(await readFile(this.file('job.json'), 'utf8')) as StoredRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  private async writeRecord(record: StoredRecord): Promise<void> {
    const temporary = this.file(`job.json.${process.pid}.tmp`);
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, this.file('job.json'));
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }
}
