import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './files.js';
import { waitFor } from './services.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ff-detector');

/** A real `ff-detector run` process, its admin URL read from its log. */
export class DaemonProcess {
  private output = '';
  admin = '';
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = once(child, 'exit').then(([code]) => (this.exitCode = code as number | null));
  }

  static async start(configYaml: string, env: Record<string, string>): Promise<DaemonProcess> {
    const config = path.join(tempDir(), 'daemon.yaml');
    writeFileSync(config, configYaml);
    const child = spawn(BIN, ['run', '--config', config], {
      cwd: tempDir(),
      env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, ADMIN_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new DaemonProcess(child);
    await waitFor(() => /admin API listening on (http:\/\/[^"\s]+)/.test(daemon.output) || daemon.exitCode !== null, 'the admin API to listen');
    const match = /admin API listening on (http:\/\/[^"\s]+)/.exec(daemon.output);
    if (!match?.[1]) throw new Error(`daemon did not start:\n${daemon.output}`);
    daemon.admin = match[1];
    return daemon;
  }

  get log(): string {
    return this.output;
  }

  async status(): Promise<{ role: string; currentRun: { enqueued: number } | null; lastRuns: Array<{ status: string; enqueued: number }> }> {
    return (await fetch(`${this.admin}/status`)).json() as never;
  }

  post(route: string, body?: unknown): Promise<Response> {
    // The admin API takes JSON POSTs only (a cross-site form cannot send this content type).
    return fetch(`${this.admin}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  }

  async get<T>(route: string): Promise<T> {
    return (await fetch(`${this.admin}${route}`)).json() as Promise<T>;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

/** Starts daemons for one test file and kills whatever is left after each test. */
export function daemonsForTests(afterEach: (hook: () => Promise<void>) => void): DaemonProcess[] {
  const started: DaemonProcess[] = [];
  afterEach(async () => {
    for (const daemon of started.splice(0)) {
      if (daemon.exitCode === null) {
        daemon.kill('SIGKILL');
        await daemon.exited;
      }
    }
  });
  return started;
}
