import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BIN, logLines, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';

// Issue 12, items 5 and 6, as a user meets them: the installed CLI in a child process. None of
// these needs a service: each mistake is caught before anything connects, or in local files.

const ROOT = path.resolve(import.meta.dirname, '../..');
const LEVELS = 'trace, debug, info, warn, error, fatal, silent';
const RULES_HEAD = 'flag: consumer_graph_ingestion\nenabled: true\n';

/** A folder with a rules file holding `body` after the flag and switch; returns [dir, rules]. */
function rulesIn(body: string): [string, string] {
  const dir = tempDir();
  const rules = path.join(dir, 'rules.yaml');
  writeFileSync(rules, `${RULES_HEAD}${body}`);
  return [dir, rules];
}

describe('usage and configuration errors exit 2, naming the problem', () => {
  it.each([['detect', '--dry-run'], ['status'], ['check', 'user-1']])('LOG_LEVEL=bogus: %s', async (...args) => {
    const result = await runCli(args, { env: { LOG_LEVEL: 'bogus' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`ff-detector: error: LOG_LEVEL "bogus" is not a log level; use one of: ${LEVELS}\n`);
    expect(result.stdout).toBe('');
  });

  it('--log-level bogus still exits 2 with the allowed levels', async () => {
    const result = await runCli(['detect', '--log-level', 'bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("option '--log-level <level>' argument 'bogus' is invalid");
  });

  it('a valid LOG_LEVEL is used', async () => {
    const levels = async (env: Record<string, string>) => logLines((await runCli(['detect', '--dry-run'], { env })).stderr).map((line) => line.level);
    expect(await levels({})).toContain(30);
    expect(await levels({ LOG_LEVEL: 'error' })).toEqual([]);
  });

  it.each(['-1', '0', '2.5', '1001', '99999999999999999999'])('status --limit %s', async (limit) => {
    const result = await runCli(['status', '--limit', limit]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`option '--limit <n>' argument '${limit}' is invalid. "${limit}" is not a whole number from 1 to 1000`);
  });

  it('status --limit 3 shows at most three runs', async () => {
    const cwd = tempDir();
    for (let i = 0; i < 4; i++) expect((await runCli(['detect'], { cwd })).code).toBe(0);
    const status = await runCli(['status', '--json', '--limit', '3'], { cwd });
    expect(status.code).toBe(0);
    expect(status.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('backfill --user-file with --resume-from: they are exclusive', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'users.txt'), 'user-1\n');
    writeFileSync(path.join(dir, 'resume.txt'), 'user-2\n');
    const result = await runCli(['backfill', '--dry-run', '--user-file', 'users.txt', '--resume-from', 'resume.txt'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("error: option '--resume-from <file>' cannot be used with option '--user-file <path|s3://…>'");
    expect(result.stdout).toBe('');
  });

  it.each([['sample', 'kafka'], ['investigate', 'kafka']])('%s %s --since yesterday', async (...command) => {
    const result = await runCli([...command, '--brokers', '127.0.0.1:1', '--since', 'yesterday']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`option '--since <duration|timestamp>' argument 'yesterday' is invalid. "yesterday" is neither a duration (15m, 2h, 7d) nor a timestamp`);
  });

  it.each([
    ['users: user-0001\n', 'users: must be a list (e.g. [user-0001])'],
    ['excludedUsers: user-0003\n', 'excludedUsers: must be a list (e.g. [user-0003])'],
    ['groups: admins\n', 'groups: must be a list of group names'],
  ])('rules with %j: RULES_INVALID', async (body, problem) => {
    const [dir, rules] = rulesIn(body);
    const result = await runCli(['detect', '--dry-run', '--flags', rules], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`ff-detector: error: flag rules ${rules} is invalid:\n  - ${problem}`);
    expect(result.stdout).toBe('');
  });

  it('a segment file the rules reference but that is missing', async () => {
    const [dir, rules] = rulesIn('segments:\n  team: team.txt\n');
    for (const command of [['detect', '--dry-run'], ['check', 'user-1'], ['reconcile', '--dry-run']]) {
      const result = await runCli([...command, '--flags', rules], { cwd: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`ff-detector: error: flag rules ${rules} is invalid:\n  - segments.team: cannot read ${path.join(dir, 'team.txt')}: no such file\n`);
    }
  });

  it.each([['--version'], ['-V']])('%s prints the package version and exits 0', async (flag) => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await runCli([flag]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
    expect(result.stderr).toBe('');
  });
});

describe('bad input files fail the run (exit 1) with an error naming the file and the place', () => {
  it('a CSV whose header names the chosen column twice', async () => {
    const dir = tempDir();
    const csv = path.join(dir, 'users.csv');
    writeFileSync(csv, 'id,name,id\nuser-1,a,user-2\n');
    const detect = await runCli(['detect', '--dry-run', '--candidates', csv, '--column', 'id'], { cwd: dir });
    const message = `${csv}: the header has 2 columns named "id" (columns 1, 3); rename all but one so the user ID column is unambiguous`;
    expect(detect.code).toBe(1);
    expect(detect.summary).toMatchObject({ status: 'failed', error: message, enqueued: 0 });
    const backfill = await runCli(['backfill', '--dry-run', '--user-file', csv, '--column', 'id'], { cwd: dir });
    expect(backfill.code).toBe(1);
    expect(logLines(backfill.stderr)).toContainEqual(expect.objectContaining({ level: 50, msg: `backfill failed: ${message}` }));
    expect(backfill.stdout).toBe('');
  });

  it('a state journal with a line that is not +id / -id: nobody is sent or marked', async () => {
    const dir = tempDir();
    const journal = path.join(dir, 'state', 'state.journal');
    mkdirSync(path.dirname(journal));
    writeFileSync(journal, '+user-0001\nuser-0002\n');
    const result = await runCli(['detect', '--state-file', journal], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'failed', enqueued: 0 });
    expect(result.summary.error).toBe(
      `state file ${journal} is corrupt at line 2: "user-0002" is not "+<user id>" or "-<user id>"; fix or remove that line (the journal is a log of +id / -id lines)`,
    );
    expect(result.stdout.trim().split('\n')).toHaveLength(1); // the summary, no message
    expect(readFileSync(journal, 'utf8')).toBe('+user-0001\nuser-0002\n');
  });

  it('a journal whose last line was torn by a crash still works', async () => {
    const dir = tempDir();
    const journal = path.join(dir, 'state.journal');
    const first = await runCli(['detect', '--state-file', journal], { cwd: dir });
    expect(first.code).toBe(0);
    appendFileSync(journal, '+user-09'); // a "+user-0999\n" cut short
    const second = await runCli(['detect', '--state-file', journal], { cwd: dir });
    expect(second.code).toBe(0);
    expect(second.summary).toMatchObject({ status: 'ok', enqueued: 0, alreadyKnown: first.summary.enqueued });
  });
});

/** Runs the CLI with stderr on a terminal (a pseudo-terminal from script(1)), stdout discarded. */
async function onTerminal(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  const command = `'${BIN}' ${args.map((arg) => `'${arg}'`).join(' ')} >/dev/null`;
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '', TERM: 'dumb' };
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output: output.replace(/\r\n/g, '\n') };
}

describe('runtime errors: one line on a terminal, JSON for machines', () => {
  it('a failed run', async () => {
    const dir = tempDir();
    const args = ['detect', '--dry-run', '--log-level', 'warn', '--candidates', 'missing.txt'];
    const terminal = await onTerminal(args, dir);
    expect(terminal.code).toBe(1);
    expect(terminal.output).toBe(`ff-detector: error: detection run failed: cannot read ${path.join(dir, 'missing.txt')}: no such file\n`);

    const piped = await runCli(args, { cwd: dir });
    expect(piped.code).toBe(1);
    const [line, ...others] = logLines(piped.stderr);
    expect(others).toEqual([]);
    expect(line).toMatchObject({ level: 50, msg: 'detection run failed', summary: { error: `cannot read ${path.join(dir, 'missing.txt')}: no such file` } });
  });

  it('a failed backfill', async () => {
    const dir = tempDir();
    const terminal = await onTerminal(['backfill', '--dry-run', '--user-file', 'missing.txt'], dir);
    expect(terminal.code).toBe(1);
    expect(terminal.output).toBe(`ff-detector: error: backfill failed: cannot read ${path.join(dir, 'missing.txt')}: no such file\n`);
  });

  it('a configuration error: the same line, on a terminal or not', async () => {
    const [dir, rules] = rulesIn('users: user-0001\n');
    const terminal = await onTerminal(['detect', '--flags', rules], dir);
    expect(terminal.code).toBe(2);
    expect(terminal.output).toMatch(new RegExp(`^ff-detector: error: flag rules ${rules} is invalid:\\n {2}- users: must be a list`));
  });
});

describe('test services', () => {
  it('the SQS/S3 server listens on loopback only', async () => {
    const server = spawn(process.execPath, [path.join(ROOT, 'scripts/fauxqs-server.mjs')], { env: { ...process.env, FAUXQS_PORT: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let stderr = '';
      server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      while (!stderr.includes('\n')) await once(server.stderr, 'data');
      const address = new URL(/listening on (\S+)/.exec(stderr)?.[1] ?? '');
      expect(address.hostname).toBe('127.0.0.1');
      expect((await fetch(address)).status).toBeGreaterThan(0); // it answers there
      // The machine's other addresses do not reach it.
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((info) => info !== undefined && info.family === 'IPv4' && !info.internal);
      for (const info of others) await expect(reachable(info?.address ?? '', Number(address.port))).resolves.toBe(false);
    } finally {
      server.kill();
    }
  });

  it('services.sh up refuses a service it does not know, before starting anything', async () => {
    const error = await promisify(execFile)(path.join(ROOT, 'scripts/services.sh'), ['up', 'valkey', 'postgres']).catch((failed: unknown) => failed);
    expect(error).toMatchObject({ code: 2, stdout: '' });
    expect((error as { stderr: string }).stderr).toContain("services: unknown service 'postgres' (known: valkey valkey-cluster sqs snowflake kafka)");
  });
});

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
