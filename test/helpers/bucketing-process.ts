// A separate Node.js process that answers bucketing questions (test/helpers/bucketing-answers.ts),
// for the cross-process stability property. It runs the current source, not dist/ (which the
// unit tests do not build and may be stale): src/flags/bucketing.ts and the modules it imports
// are transpiled with TypeScript into a temporary folder, as `tsc` would emit them, together with
// bucketing-answers.ts. One process per test; questions go in batches over stdin/stdout.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { jsonLine, type BucketAnswer, type BucketQuestion } from './bucketing-answers.js';
import { tempDir } from './files.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BUCKETING = path.join(ROOT, 'src/flags/bucketing.ts');
const ANSWERS = path.join(ROOT, 'test/helpers/bucketing-answers.ts');

/** Relative imports that stay at run time (`import type` is erased). */
const RUNTIME_IMPORT = /^import\s+(?!type\b)[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)\.js';/gm;

/** `file` and every module it imports at run time, all of which must sit in its folder. */
function moduleClosure(file: string): string[] {
  const found = new Set<string>();
  const visit = (current: string): void => {
    if (found.has(current)) return;
    found.add(current);
    for (const match of readFileSync(current, 'utf8').matchAll(RUNTIME_IMPORT)) {
      const target = path.resolve(path.dirname(current), `${match[1] ?? ''}.ts`);
      if (path.dirname(target) !== path.dirname(file)) throw new Error(`bucketing-process: ${current} imports ${target}, outside ${path.dirname(file)}; extend the transpile step`);
      visit(target);
    }
  };
  visit(file);
  return [...found];
}

function transpileInto(dir: string, file: string): void {
  const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true },
  });
  writeFileSync(path.join(dir, path.basename(file).replace(/\.ts$/, '.js')), outputText);
}

export class BucketingProcess {
  /** Batches sent and not answered yet, oldest first (answers come back in order). */
  private readonly pending: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  private stderr = '';
  private readonly exited: Promise<unknown>;
  private exitError: Error | undefined;

  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, Readable>,
    private readonly dir: string,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => this.pending.shift()?.resolve(line));
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = once(child, 'exit').then(([code]: unknown[]) => {
      this.exitError = new Error(`bucketing process exited (code ${String(code)}): ${this.stderr}`);
      for (const waiter of this.pending.splice(0)) waiter.reject(this.exitError);
    });
  }

  static start(): BucketingProcess {
    const dir = tempDir('ffd-bucketing-');
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
    for (const file of [...moduleClosure(BUCKETING), ANSWERS]) transpileInto(dir, file);
    const url = (name: string): string => pathToFileURL(path.join(dir, name)).href;
    const bootstrap = `const [b, a] = await Promise.all([import(${JSON.stringify(url('bucketing.js'))}), import(${JSON.stringify(url('bucketing-answers.js'))})]); await a.serve(b);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', bootstrap], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new BucketingProcess(child, dir);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends one batch and waits for its answers. */
  async ask(questions: readonly BucketQuestion[]): Promise<BucketAnswer[]> {
    if (this.exitError) throw this.exitError;
    const line = new Promise<string>((resolve, reject) => this.pending.push({ resolve, reject }));
    this.child.stdin.write(jsonLine(questions));
    return JSON.parse(await line) as BucketAnswer[];
  }

  async close(): Promise<void> {
    this.child.stdin.end();
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
