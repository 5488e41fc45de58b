import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/files.js';
import { awsEnv, createQueue, drainQueue, userIdsOf, waitFor } from '../helpers/services.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');

interface BackfillRun {
  code: number | null;
  stdout: string;
  stderr: string;
  summary: { status: string; total: number; sent: number; remaining: number; invalid: number; duplicates: number; resumeFile: string | null; dryRun: boolean };
}

/** `ff-detector backfill` as a child process; `whileRunning` may act on it (e.g. signal it). */
async function backfill(args: string[], env: Record<string, string> = {}, whileRunning?: (child: ReturnType<typeof spawn>) => Promise<void>): Promise<BackfillRun> {
  const cwd = tempDir();
  const child = spawn(BIN, ['backfill', ...args], { cwd, env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...awsEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  if (whileRunning) await whileRunning(child);
  const [code] = (await exited) as [number | null];
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return { code, stdout, stderr, summary: (last.startsWith('{') ? JSON.parse(last) : {}) as BackfillRun['summary'] };
}

function userFile(content: string): string {
  const file = path.join(tempDir(), 'users.txt');
  writeFileSync(file, content);
  return file;
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `user-${from + i}`);

describe('ff-detector backfill', () => {
  it('--dry-run writes each message as NDJSON with the backfill contract, sends nothing', async () => {
    const result = await backfill(['--user-file', userFile('\uFEFFu1\r\n u2 \n\nu1\n# c\nbad id\n'), '--dry-run', '--lookback-days', '30']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const bodies = lines.slice(0, -1).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(bodies.map((b) => b.user_id)).toEqual(['u1', 'u2']);
    expect(bodies[0]).toMatchObject({ event_type: 'user_load_request', reason: 'batch_backfill', lookback_days: 30, priority: 'low' });
    expect(String(bodies[0]?.request_id)).toMatch(/^backfill-[0-9a-f-]{36}$/);
    expect(result.summary).toMatchObject({ status: 'ok', total: 2, sent: 2, invalid: 1, duplicates: 1, dryRun: true, resumeFile: null });
  });

  it('sends every listed user once to SQS, logging progress every 1,000', async () => {
    const queueUrl = await createQueue();
    const users = ids(2100);
    const result = await backfill(['--user-file', userFile([...users, ...users.slice(0, 50)].join('\n')), '--rate-limit', '5000'], { SQS_QUEUE_URL: queueUrl });
    expect(result.summary).toMatchObject({ status: 'ok', total: 2100, sent: 2100, duplicates: 50 });
    expect(result.stderr).toMatch(/Sent 1000\/2100 \(47\.6%\), elapsed: \d+s, ETA: \d+s/);
    expect(userIdsOf(await drainQueue(queueUrl)).sort()).toEqual([...users].sort());
  });

  it('on SIGTERM writes the users not sent to a resume file; --resume-from sends exactly those', async () => {
    const queueUrl = await createQueue();
    const users = ids(400);
    const received: string[] = [];
    const first = await backfill(['--user-file', userFile(users.join('\n')), '--rate-limit', '50'], { SQS_QUEUE_URL: queueUrl }, async (child) => {
      await waitFor(async () => {
        received.push(...userIdsOf(await drainQueue(queueUrl)));
        return received.length >= 50;
      }, '50 users received');
      child.kill('SIGTERM');
    });
    expect(first.code).toBe(1);
    expect(first.summary.status).toBe('cancelled');
    expect(first.summary.resumeFile).not.toBeNull();
    expect(first.stderr).toContain(`ff-detector backfill --resume-from ${first.summary.resumeFile}`);
    received.push(...userIdsOf(await drainQueue(queueUrl)));
    const resumeList = readFileSync(first.summary.resumeFile as string, 'utf8').trim().split('\n');
    expect(resumeList.length).toBe(first.summary.remaining);

    const second = await backfill(['--resume-from', first.summary.resumeFile as string, '--queue-url', queueUrl, '--rate-limit', '5000']);
    expect(second.summary).toMatchObject({ status: 'ok', total: resumeList.length, sent: resumeList.length });
    received.push(...userIdsOf(await drainQueue(queueUrl)));
    expect(new Set(received)).toEqual(new Set(users)); // every user covered
    expect(received.length - users.length).toBeLessThanOrEqual(10); // repeats: at most the batch in flight
  });

  it('writes a resume file of everyone when the queue refuses from the start', async () => {
    const missing = (await createQueue()).replace(/[^/]+$/, 'no-such-queue');
    const result = await backfill(['--user-file', userFile(ids(25).join('\n'))], { SQS_QUEUE_URL: missing });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'failed', sent: 0, remaining: 25 });
    expect(readFileSync(result.summary.resumeFile as string, 'utf8').trim().split('\n')).toEqual(ids(25));
  });

  it('checks that the resume file can be written before sending anything', async () => {
    const queueUrl = await createQueue();
    const result = await backfill(['--user-file', userFile(ids(300).join('\n')), '--resume-file', '/nonexistent-dir/resume.txt'], { SQS_QUEUE_URL: queueUrl });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot write the resume file /nonexistent-dir/resume.txt (--resume-file)');
    expect(await drainQueue(queueUrl)).toEqual([]);
  });

  it('keeps the resume file only while users remain: everyone while running (a crash leaves it), none after success', async () => {
    const queueUrl = await createQueue();
    const resumeFile = path.join(tempDir(), 'resume.txt');
    const users = ids(300);
    const killed = await backfill(['--user-file', userFile(users.join('\n')), '--rate-limit', '20', '--resume-file', resumeFile], { SQS_QUEUE_URL: queueUrl }, async (child) => {
      await waitFor(async () => (await drainQueue(queueUrl)).length > 0, 'a first batch received');
      child.kill('SIGKILL');
    });
    expect(killed.code).toBeNull();
    expect(readFileSync(resumeFile, 'utf8').trim().split('\n')).toEqual(users); // at least once: resume sends everyone again
    const done = await backfill(['--resume-from', resumeFile, '--resume-file', resumeFile, '--rate-limit', '5000'], { SQS_QUEUE_URL: queueUrl });
    expect(done.summary).toMatchObject({ status: 'ok', sent: 300, resumeFile: null });
    expect(existsSync(resumeFile)).toBe(false);
  });

  it('refuses a list over the cap before sending anything', async () => {
    const queueUrl = await createQueue();
    const config = path.join(tempDir(), 'c.yaml');
    writeFileSync(config, 'backfill:\n  maxUsers: 5\n');
    const result = await backfill(['--user-file', userFile(ids(6).join('\n')), '--config', config], { SQS_QUEUE_URL: queueUrl });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('holds more than 5 user IDs, the cap for one backfill job');
    expect(await drainQueue(queueUrl)).toEqual([]);
  });

  it('requires --user-file', async () => {
    const result = await backfill([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--user-file is required');
  });
});
