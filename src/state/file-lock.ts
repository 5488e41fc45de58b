import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';

interface LockRecord {
  token: string;
  expiresAt: number;
  pid: number;
}

/**
 * The file store's run lock: a JSON file created exclusively (O_EXCL), with an expiry so that a
 * crashed run does not hold it forever. Same contract as the Valkey lock, for one machine.
 */
export class FileLock {
  async tryLock(file: string, token: string, ttlMs: number): Promise<boolean> {
    const record: LockRecord = { token, expiresAt: Date.now() + ttlMs, pid: process.pid };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(file, 'wx');
        await handle.writeFile(JSON.stringify(record));
        await handle.close();
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const current = await this.read(file);
        if (current && current.expiresAt > Date.now()) return false;
        await unlink(file).catch(() => undefined); // expired or unreadable: take it over
      }
    }
    return false;
  }

  async renewLock(file: string, token: string, ttlMs: number): Promise<boolean> {
    const current = await this.read(file);
    if (current?.token !== token) return false;
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify({ ...current, expiresAt: Date.now() + ttlMs }));
    await rename(temporary, file);
    return true;
  }

  async unlock(file: string, token: string): Promise<void> {
    const current = await this.read(file);
    if (current?.token === token) await unlink(file).catch(() => undefined);
  }

  private async read(file: string): Promise<LockRecord | undefined> {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as LockRecord;
    } catch {
      return undefined;
    }
  }
}
