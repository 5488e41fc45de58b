import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { writeEquivalentRules } from '../../bench/openfeature-fixtures.js';
import { DEFAULT_ID_PATTERN } from '../../src/config/schema.js';
import { PACKAGE_ROOT, loadConfig } from '../../src/config/load.js';
import { flagdBucket } from '../../src/flags/bucketing.js';
import type { FlagResult } from '../../src/flags/types.js';
import type { OpenFeatureFlagChecker } from '../../src/flags/openfeature-checker.js';
import { silentLogger } from '../../src/logger.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';

/**
 * The OpenFeature checker with a real provider: @openfeature/flagd-provider, loaded by its package
 * name as an operator configures it. In-process mode reads a flagd flag definition file; its
 * answers must be the embedded evaluator's on the equivalent rules file, user for user.
 */
const FLAG = 'consumer_graph_ingestion';
const USERS = 100_000;
const ids = Array.from({ length: USERS }, (_, i) => `user-${i}`);

const runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.close()));
});

function runtimeFor(flags: Record<string, unknown>): Runtime {
  const runtime = new Runtime(loadConfig({ env: {}, overrides: { flag: FLAG, flags } }), silentLogger());
  runtimes.push(runtime);
  return runtime;
}

async function checkAll(runtime: Runtime): Promise<FlagResult[]> {
  const checker = await runtime.openChecker();
  const results: FlagResult[] = [];
  for (let i = 0; i < ids.length; i += 1000) results.push(...(await checker.check(ids.slice(i, i + 1000))));
  return results;
}

describe('OpenFeature checker with the flagd provider in in-process mode', () => {
  it.each([25, 12.345])('answers as the embedded evaluator does for 100,000 users (%s % rollout, exclusions, users, a $ref segment)', async (percentage) => {
    const pick = (every: number, offset: number, count: number) => Array.from({ length: count }, (_, i) => `user-${offset + i * every}`);
    const { rulesFile, flagdFile } = writeEquivalentRules(tempDir('ffd-flagd-'), {
      flag: FLAG,
      percentage,
      excludedUsers: pick(331, 7, 300),
      users: pick(997, 3, 100),
      // Overlaps the exclusions (user-7 + 331·k = 7 + 97·j for some): excluded must win.
      segment: pick(97, 7, 1000),
    });
    const embedded = await checkAll(runtimeFor({ checker: 'rules', rules: rulesFile }));
    const throughProvider = await checkAll(
      runtimeFor({ checker: 'openfeature', openfeature: { package: '@openfeature/flagd-provider', args: [{ resolverType: 'in-process', offlineFlagSourcePath: flagdFile }] } }),
    );
    expect(throughProvider.filter((result) => result === 'unevaluable')).toEqual([]);
    const differences = ids.filter((_, i) => throughProvider[i] !== embedded[i]);
    expect(differences).toEqual([]);
    // The rules did something: a rollout near the percentage, with explicit users on top.
    const enabled = embedded.filter((result) => result === 'enabled').length;
    expect(enabled / USERS).toBeGreaterThan(percentage / 100);
    expect(enabled / USERS).toBeLessThan(percentage / 100 + 0.02);
    expect(throughProvider[7]).toBe('disabled'); // user-7: excluded and in the segment
  });

  it('a flag switched off (state DISABLED: flagd answers the default, reason DISABLED) is disabled for everyone, as enabled: false is', async () => {
    const { flagdFile } = writeEquivalentRules(tempDir('ffd-flagd-'), { flag: FLAG, percentage: 100, excludedUsers: [], users: ['user-1'], segment: [] });
    writeFileSync(flagdFile, readFileSync(flagdFile, 'utf8').replace('"state": "ENABLED"', '"state": "DISABLED"'));
    const runtime = runtimeFor({ checker: 'openfeature', openfeature: { package: '@openfeature/flagd-provider', args: [{ resolverType: 'in-process', offlineFlagSourcePath: flagdFile }] } });
    const checker = await runtime.openChecker();
    expect(await checker.check(['user-1', 'user-2'])).toEqual(['disabled', 'disabled']);
  });

  it('a flag the definition does not hold makes every user unevaluable (FLAG_NOT_FOUND), never disabled', async () => {
    const { flagdFile } = writeEquivalentRules(tempDir('ffd-flagd-'), { flag: FLAG, percentage: 50, excludedUsers: [], users: [], segment: [] });
    const runtime = runtimeFor({
      checker: 'openfeature',
      openfeature: { package: '@openfeature/flagd-provider', flagKey: 'no_such_flag', args: [{ resolverType: 'in-process', offlineFlagSourcePath: flagdFile }] },
    });
    const checker = await runtime.openChecker();
    expect(await checker.check(['user-1', 'user-2'])).toEqual(['unevaluable', 'unevaluable']);
  });
});

describe('OpenFeature checker with the flagd provider in RPC mode, flagd unreachable', () => {
  // A port that accepts connections and never answers: the provider cannot become ready.
  let silent: Server | undefined;
  const sockets = new Set<Socket>();
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
  });

  it('fails closed: every user unevaluable, the breaker opens, the run is not held up', async () => {
    silent = createServer((socket) => void sockets.add(socket));
    const server = silent;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const runtime = runtimeFor({
      checker: 'openfeature',
      openfeature: {
        package: '@openfeature/flagd-provider',
        args: [{ resolverType: 'rpc', host: '127.0.0.1', port, deadlineMs: 200, retryBackoffMaxMs: 1000 }],
        readyTimeoutMs: 1000,
        breakerThreshold: 3,
      },
    });
    const started = performance.now();
    const checker = (await runtime.openChecker()) as OpenFeatureFlagChecker;
    const results = await checker.check(ids.slice(0, 1000));
    expect(new Set(results)).toEqual(new Set(['unevaluable']));
    expect(checker.breaker.current).toBe('open');
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe('the CLI with the OpenFeature checker', () => {
  it('runs config/ff-detector.openfeature.example.yaml: flagd in-process decides, the enabled users are enqueued', async () => {
    const stateFile = path.join(tempDir('ffd-of-cli-'), 'state.journal');
    const example = path.join(PACKAGE_ROOT, 'config', 'ff-detector.openfeature.example.yaml');
    const result = await runCli(['detect', '--dry-run', '--config', example, '--state-file', stateFile], { cwd: PACKAGE_ROOT });
    expect(result.code, result.stderr).toBe(0);
    // config/flagd-flags.json by hand: user-0003 off; two users and a segment on; else 25 of 100 buckets.
    const segment = new Set(['user-0001', 'user-0002', 'user-0014', 'user-0015', 'user-0027', 'user-0042', 'user-0050', 'user-0051']);
    const idPattern = new RegExp(DEFAULT_ID_PATTERN);
    const candidates = new Set(readFileSync(path.join(PACKAGE_ROOT, 'config', 'sample-candidates.txt'), 'utf8').split('\n').filter((id) => idPattern.test(id)));
    const expected = [...candidates].filter((id) => id !== 'user-0003' && (segment.has(id) || flagdBucket(FLAG, id, 100) < 25));
    const sent = result.stdout.split('\n').filter((line) => line.includes('user_load_request')).map((line) => (JSON.parse(line) as { user_id: string }).user_id);
    expect(sent.sort()).toEqual(expected.sort());
    expect(result.summary).toMatchObject({ status: 'ok', unevaluable: 0, enabled: expected.length });
  });

  it('stops at start-up (exit 2) when the provider package is not installed, naming it', async () => {
    const dir = tempDir('ffd-of-cli-');
    const config = path.join(dir, 'config.yaml');
    writeFileSync(config, "flags:\n  checker: openfeature\n  openfeature:\n    package: '@example/not-installed-provider'\n");
    const result = await runCli(['detect', '--dry-run', '--config', config, '--state-file', path.join(dir, 'state.journal')], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('flags.openfeature.package: cannot load the OpenFeature provider "@example/not-installed-provider"');
  });
});
