import { writeFileSync } from 'node:fs';
import pino from 'pino';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, loadConfig } from '../../src/config/load.js';
import { FfError } from '../../src/errors.js';
import { openOpenFeatureChecker, type OpenedOpenFeatureChecker } from '../../src/flags/openfeature-provider.js';
import { openFeatureSchema } from '../../src/flags/openfeature-schema.js';
import { silentLogger } from '../../src/logger.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { tempDir } from '../helpers/files.js';

const openfeature = (settings: Record<string, unknown>) => ({ flags: { checker: 'openfeature', openfeature: { package: '@openfeature/flagd-provider', ...settings } } });

describe('flags.openfeature in the configuration', () => {
  it('is required by checker "openfeature", and defaults the rest', () => {
    expect(() => loadConfig({ env: {}, overrides: { flags: { checker: 'openfeature' } } })).toThrow(/flags\.openfeature: checker "openfeature" needs flags\.openfeature/);
    const config = loadConfig({ env: {}, overrides: openfeature({}) });
    expect(config.flags.openfeature).toEqual({
      package: '@openfeature/flagd-provider',
      export: null,
      factory: null,
      args: [],
      flagKey: null,
      context: {},
      concurrency: 16,
      timeoutMs: 2000,
      readyTimeoutMs: 30_000,
      breakerThreshold: 5,
      breakerCooldownMs: 30_000,
    });
  });

  it('names every bad option', () => {
    expect(() =>
      loadConfig({ env: {}, overrides: openfeature({ export: 'a.b', concurrency: 0, context: { targetingKey: 'x' }, timeoutMs: -1, colour: 'red' }) }),
    ).toThrow(
      expect.objectContaining({
        problems: expect.arrayContaining([
          'flags.openfeature.export: must be a JavaScript identifier (an export or method name)',
          expect.stringMatching(/^flags\.openfeature\.concurrency: /),
          'flags.openfeature.context: must not set targetingKey: it is always the user ID',
          expect.stringMatching(/^flags\.openfeature\.timeoutMs: /),
          expect.stringMatching(/^flags\.openfeature: .*colour/),
        ]) as unknown,
      }),
    );
  });

  it('fills ${NAME} in the provider arguments from the environment, and names a variable that is not set', () => {
    const config = loadConfig({ env: { LD_SDK_KEY: 'sdk-123' }, overrides: openfeature({ args: ['${LD_SDK_KEY}', { sendEvents: false, tags: ['key ${LD_SDK_KEY}'] }] }) });
    expect(config.flags.openfeature?.args).toEqual(['sdk-123', { sendEvents: false, tags: ['key sdk-123'] }]);
    expect(() => loadConfig({ env: {}, overrides: openfeature({ args: [{ sdkKey: '${NOPE}' }] }) })).toThrow('flags.openfeature.args.0.sdkKey: environment variable NOPE is not set');
  });

  it('the example config is valid', () => {
    const config = loadConfig({ configPath: path.join(PACKAGE_ROOT, 'config', 'ff-detector.openfeature.example.yaml'), env: {} });
    expect(config.flags).toMatchObject({ checker: 'openfeature', openfeature: { package: '@openfeature/flagd-provider' } });
  });
});

const opened: OpenedOpenFeatureChecker[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((checker) => checker.close()));
});

async function openWith(settings: Record<string, unknown>, cwd?: string): Promise<OpenedOpenFeatureChecker> {
  const result = await openOpenFeatureChecker(openFeatureSchema.parse(settings), 'f', silentLogger(), cwd === undefined ? {} : { cwd });
  opened.push(result);
  return result;
}

/** A provider module of the operator's own, as a file: loaded by path. */
function writeProviderModule(dir: string): string {
  const file = path.join(dir, 'my-provider.mjs');
  writeFileSync(
    file,
    `export class MyProvider {
  metadata = { name: 'mine' };
  runsOn = 'server';
  constructor(options) { if (!options || typeof options.on !== 'string') throw new Error('options.on is required'); this.on = options.on; }
  static create(on) { return new MyProvider({ on }); }
  async resolveBooleanEvaluation(flagKey, defaultValue, context) { return { value: context.targetingKey === this.on }; }
  async resolveStringEvaluation() { throw new Error('unused'); }
  async resolveNumberEvaluation() { throw new Error('unused'); }
  async resolveObjectEvaluation() { throw new Error('unused'); }
}
export class MyWebProvider { metadata = { name: 'web' }; runsOn = 'client'; async resolveBooleanEvaluation() { return { value: true }; } }
export class NotAProvider { hello = 'world'; }
`,
  );
  return file;
}

describe('loading the provider', () => {
  it('refuses, at start-up, a package that is not installed: names it and how to install it', async () => {
    const runtime = new Runtime(loadConfig({ env: {}, overrides: openfeature({ package: '@example/not-installed-provider' }) }), silentLogger());
    const failure = await runtime.openChecker().catch((error: unknown) => error);
    await runtime.close();
    expect(failure).toBeInstanceOf(FfError);
    expect(failure).toMatchObject({ code: 'CONFIG_INVALID', exitCode: 2 });
    expect((failure as Error).message).toMatch(/^flags\.openfeature\.package: cannot load the OpenFeature provider "@example\/not-installed-provider" \(.*\): install it beside ff-detector \(npm install @example\/not-installed-provider/);
  });

  it('loads a module by path, relative to the working directory, with `new` or a static factory', async () => {
    const dir = tempDir('ffd-provider-');
    writeProviderModule(dir);
    const built = await openWith({ package: './my-provider.mjs', export: 'MyProvider', args: [{ on: 'u1' }] }, dir);
    expect(await built.checker.check(['u1', 'u2'])).toEqual(['enabled', 'disabled']);
    const made = await openWith({ package: './my-provider.mjs', export: 'MyProvider', factory: 'create', args: ['u2'] }, dir);
    expect(await made.checker.check(['u1', 'u2'])).toEqual(['disabled', 'enabled']);
  });

  it('says which option is wrong: export, factory, arguments, not a (server) provider', async () => {
    const dir = tempDir('ffd-provider-');
    const file = writeProviderModule(dir);
    const problem = (settings: Record<string, unknown>) => openWith({ package: file, ...settings }).then(
      () => 'opened',
      (error: unknown) => (error instanceof FfError ? error.message : String(error)),
    );
    expect(await problem({})).toBe(`flags.openfeature.export: must be set; its exports: MyProvider, MyWebProvider, NotAProvider`);
    expect(await problem({ export: 'Nope' })).toBe(`flags.openfeature.export: ${file} has no export "Nope"; its exports: MyProvider, MyWebProvider, NotAProvider`);
    expect(await problem({ export: 'MyProvider', factory: 'build' })).toBe(`flags.openfeature.factory: ${file} has no static method "build"`);
    expect(await problem({ export: 'MyProvider', args: [] })).toBe(`flags.openfeature.args: the provider from ${file} refused them: options.on is required`);
    expect(await problem({ export: 'NotAProvider' })).toMatch(/^flags\.openfeature\.package: what .* built is not an OpenFeature server provider/);
    expect(await problem({ export: 'MyWebProvider' })).toMatch(/is a client \(browser\) provider; use the vendor's server provider$/);
  });
});

describe('per-evaluation analytics', () => {
  /** Builds a provider under a vendor's package name with a fake module, recording its arguments. */
  async function argumentsGiven(packageName: string, args: unknown[]): Promise<{ given: unknown[]; warnings: string[] }> {
    let given: unknown[] = [];
    class RecordingProvider {
      metadata = { name: 'recording' };
      constructor(...received: unknown[]) {
        given = received;
      }
      resolveBooleanEvaluation() {
        return Promise.resolve({ value: false });
      }
    }
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });
    const result = await openOpenFeatureChecker(openFeatureSchema.parse({ package: packageName, args }), 'f', logger, { load: () => Promise.resolve({ RecordingProvider }) });
    opened.push(result);
    return { given, warnings };
  }

  it('are switched off for the providers known to send them, unless the operator says otherwise (with a warning)', async () => {
    expect((await argumentsGiven('@launchdarkly/openfeature-node-server', ['sdk-key'])).given).toEqual(['sdk-key', { sendEvents: false, diagnosticOptOut: true }]);
    expect((await argumentsGiven('@launchdarkly/openfeature-node-server', ['sdk-key', { stream: true }, 5])).given).toEqual(['sdk-key', { stream: true, sendEvents: false, diagnosticOptOut: true }, 5]);
    expect((await argumentsGiven('@openfeature/go-feature-flag-provider', [{ endpoint: 'http://relay:1031' }])).given).toEqual([{ endpoint: 'http://relay:1031', disableDataCollection: true }]);
    const kept = await argumentsGiven('@launchdarkly/openfeature-node-server', ['sdk-key', { sendEvents: true }]);
    expect(kept.given).toEqual(['sdk-key', { sendEvents: true, diagnosticOptOut: true }]);
    expect(kept.warnings).toContain('flags.openfeature.args.1.sendEvents is true: every check sends analytics events (every evaluation and context) to the vendor; set it to false');
    expect((await argumentsGiven('@openfeature/flagd-provider', [{ resolverType: 'rpc' }])).given).toEqual([{ resolverType: 'rpc' }]);
  });
});
