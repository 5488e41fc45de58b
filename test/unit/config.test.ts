import { chooseSink } from '../../src/config/sink-choice.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig, PACKAGE_ROOT } from '../../src/config/load.js';
import { ValidationError } from '../../src/errors.js';
import { writeTemp } from '../helpers/files.js';

describe('configuration layers', () => {
  it('defaults to the embedded sample files, file state and stdout', () => {
    const config = loadConfig({ env: {}, cwd: '/work/somewhere' });
    expect(config.candidates.path).toBe(path.join(PACKAGE_ROOT, 'config/sample-candidates.txt'));
    expect(config.flags.rules).toBe(path.join(PACKAGE_ROOT, 'config/flag-rules.yaml'));
    expect(config.state.file).toBe('/work/somewhere/.ff-detector/state.journal');
    expect(config.state.valkeyUrl).toBeNull();
    expect(config.sqs.queueUrl).toBeNull();
    expect(config.enqueue).toMatchObject({ rateLimit: 10, budget: 36_000, lookbackDays: 365 });
    expect(config.state.knownSetKey).toBe('backfill:known_enabled_users');
    expect(config.state.loadedKeyPrefix).toBe('loaded_users:');
  });

  it('applies file → environment → flags, later layers winning', () => {
    const file = writeTemp('c.yaml', 'enqueue:\n  rateLimit: 5\n  budget: 100\ncandidates:\n  path: lists/users.txt\nstate:\n  valkeyUrl: redis://file:6379\n');
    const config = loadConfig({
      configPath: file,
      env: { VALKEY_URL: 'redis://env:6379', SQS_QUEUE_URL: 'http://q/1/queue' },
      overrides: { enqueue: { budget: 7 } },
      cwd: '/tmp',
    });
    expect(config.enqueue).toMatchObject({ rateLimit: 5, budget: 7 });
    expect(config.state.valkeyUrl).toBe('redis://env:6379');
    expect(config.sqs.queueUrl).toBe('http://q/1/queue');
    expect(config.candidates.path).toBe(path.join(path.dirname(file), 'lists/users.txt'));
  });

  it('takes custom AWS endpoints from the SDK\'s variables into the config (adapters read no environment)', () => {
    expect(loadConfig({ env: {} })).toMatchObject({ sqs: { endpoint: null }, s3: { endpoint: null } });
    expect(loadConfig({ env: { AWS_ENDPOINT_URL: 'http://local:4566' } })).toMatchObject({ sqs: { endpoint: 'http://local:4566' }, s3: { endpoint: 'http://local:4566' } });
    const specific = loadConfig({ env: { AWS_ENDPOINT_URL: 'http://local:4566', AWS_ENDPOINT_URL_SQS: 'http://sqs:9324', AWS_ENDPOINT_URL_S3: 'http://s3:9000' } });
    expect(specific).toMatchObject({ sqs: { endpoint: 'http://sqs:9324' }, s3: { endpoint: 'http://s3:9000' } });
    expect(() => loadConfig({ env: { AWS_ENDPOINT_URL_SQS: 'not a url' } })).toThrow(/sqs\.endpoint.*AWS_ENDPOINT_URL_SQS or AWS_ENDPOINT_URL/);
  });

  it('keeps s3:// locations as they are', () => {
    const config = loadConfig({ env: {}, overrides: { candidates: { path: 's3://b/k.txt.gz' } } });
    expect(config.candidates.path).toBe('s3://b/k.txt.gz');
  });

  it('names every bad field at once', () => {
    const file = writeTemp('c.yaml', 'enqueue:\n  rateLimit: -1\n  lookbackDays: 1.5\n  typo: 1\nstate:\n  valkeyUrl: not-a-url\nidPattern: "(["\n');
    const error = (() => {
      try {
        loadConfig({ configPath: file, env: {} });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    const problems = (error as ValidationError).problems.join('\n');
    // Each named with where its value came from: the file here.
    for (const field of ['enqueue.rateLimit', 'enqueue.lookbackDays', 'enqueue', 'state.valkeyUrl', 'idPattern']) {
      expect(problems).toContain(`${field} (in ${file}):`);
    }
    expect(problems).toContain('Unrecognized key: "typo"');
    expect((error as ValidationError).exitCode).toBe(2);
  });

  it('names the option or environment variable a bad value came from', () => {
    expect(() => loadConfig({ env: { VALKEY_URL: 'http://h', SQS_QUEUE_URL: 'q' }, overrides: { enqueue: { budget: -1 } } })).toThrow(
      /state\.valkeyUrl \(VALKEY_URL\): scheme must be[\s\S]*sqs\.queueUrl \(SQS_QUEUE_URL\)[\s\S]*enqueue\.budget \(--budget\)/,
    );
  });

  it('reports a config file that is not YAML, or missing', () => {
    expect(() => loadConfig({ configPath: writeTemp('c.yaml', 'a: [b'), env: {} })).toThrow(/not valid YAML/);
    expect(() => loadConfig({ configPath: '/nonexistent/c.yaml', env: {} })).toThrow(/cannot read config file/);
  });
});

describe('flag checker selection', () => {
  it('needs flags.http for the http checker and expands ${ENV} in headers', () => {
    expect(() => loadConfig({ env: {}, overrides: { flags: { checker: 'http' } } })).toThrow(/flags\.http: checker "http" needs flags\.http/);
    const config = loadConfig({
      env: { FLAG_TOKEN: 's3cret' },
      overrides: { flags: { checker: 'http', http: { urlTemplate: 'https://flags.example/{flag}/{userId}', headers: { authorization: 'Bearer ${FLAG_TOKEN}' } } } },
    });
    expect(config.flags.http).toMatchObject({ headers: { authorization: 'Bearer s3cret' }, concurrency: 16, timeoutMs: 2000, retries: 3, responsePath: 'enabled' });
  });

  it('names a header variable that is not set, and a template without {userId}', () => {
    expect(() =>
      loadConfig({ env: {}, overrides: { flags: { checker: 'http', http: { urlTemplate: 'https://f/{userId}', headers: { authorization: '${NOPE}' } } } } }),
    ).toThrow('flags.http.headers.authorization: environment variable NOPE is not set');
    expect(() => loadConfig({ env: {}, overrides: { flags: { checker: 'http', http: { urlTemplate: 'https://f/x' } } } })).toThrow(/urlTemplate: must contain \{userId\}/);
  });
});

describe('example configs in config/', () => {
  it('ff-detector.example.yaml holds every option at its default', () => {
    const file = path.join(PACKAGE_ROOT, 'config', 'ff-detector.example.yaml');
    const example = loadConfig({ configPath: file, env: {}, cwd: '/somewhere' });
    const defaults = loadConfig({ env: {}, cwd: '/somewhere' });
    // Every option is written out, not only equal by default: a new option must be added to the example.
    const leaves = (value: unknown, at: string): string[] =>
      value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value).flatMap(([key, inner]) => leaves(inner, at === '' ? key : `${at}.${key}`)) : [at];
    const written = new Set(leaves(YAML.parse(readFileSync(file, 'utf8')), ''));
    expect(leaves(defaults, '').filter((option) => !written.has(option))).toEqual([]);
    expect({ ...example, candidates: { ...example.candidates, path: '' }, flags: { ...example.flags, rules: '' }, state: { ...example.state, file: '' } }).toEqual({
      ...defaults,
      candidates: { ...defaults.candidates, path: '' },
      flags: { ...defaults.flags, rules: '' },
      state: { ...defaults.state, file: '' },
    });
  });

  it.each(['ff-detector.example.yaml', 'ff-detector.http.example.yaml', 'ff-detector.snowflake.example.yaml'])('%s is valid', (name) => {
    const config = loadConfig({ configPath: path.join(PACKAGE_ROOT, 'config', name), env: { FLAG_SERVICE_TOKEN: 't', SNOWFLAKE_ACCOUNT: 'a', SNOWFLAKE_USER: 'u' } });
    expect(config.flag).toBe('consumer_graph_ingestion');
  });
});

describe('candidate source selection', () => {
  it('takes Snowflake settings from SNOWFLAKE_* and requires account and user', () => {
    expect(() => loadConfig({ env: {}, overrides: { candidates: { source: 'snowflake' } } })).toThrow(/candidates\.snowflake: source "snowflake" needs account and username/);
    const config = loadConfig({
      env: { SNOWFLAKE_ACCOUNT: 'acme', SNOWFLAKE_USER: 'svc', SNOWFLAKE_PRIVATE_KEY_PATH: '/keys/k.p8', SNOWFLAKE_WAREHOUSE: 'WH' },
      overrides: { candidates: { source: 'snowflake' } },
    });
    expect(config.candidates.snowflake).toMatchObject({ account: 'acme', username: 'svc', privateKeyPath: '/keys/k.p8', warehouse: 'WH', activeDays: 30, idColumn: 'USER_ID' });
    expect(config.candidates.snowflake.schemaGate).toEqual({ table: 'RECEIPTS', columns: ['USER_ID_RAW', 'PURCHASE_DATE'] });
  });
});

describe('daemon, admin and safety settings', () => {
  it('defaults to hourly in UTC on 127.0.0.1:8080, and reads ADMIN_* and KAFKA_BROKERS', () => {
    const defaults = loadConfig({ env: {} });
    expect(defaults.daemon).toMatchObject({ schedule: '0 * * * *', timezone: 'UTC', runAtStart: false, historySize: 50 });
    expect(defaults.admin).toMatchObject({ host: '127.0.0.1', port: 8080, token: null });
    const fromEnv = loadConfig({ env: { ADMIN_HOST: '0.0.0.0', ADMIN_PORT: '9090', ADMIN_TOKEN: 'x'.repeat(32), KAFKA_BROKERS: 'k1:9092, k2:9092' } });
    expect(fromEnv.admin).toMatchObject({ host: '0.0.0.0', port: 9090, token: 'x'.repeat(32) });
    expect(fromEnv.safety.consumerLag.brokers).toEqual(['k1:9092', 'k2:9092']);
  });

  it('names a bad cron expression, time zone, short token and an incomplete lag gate', () => {
    expect(() =>
      loadConfig({
        env: { ADMIN_TOKEN: 'short' },
        overrides: { daemon: { schedule: 'every hour', timezone: 'Mars/Olympus' }, safety: { consumerLag: { enabled: true } } },
      }),
    ).toThrow(/daemon\.schedule: is not a valid cron expression[\s\S]*daemon\.timezone: is not an IANA time zone[\s\S]*admin\.token \(ADMIN_TOKEN\): must be at least 16 characters[\s\S]*safety\.consumerLag: enabled needs brokers/);
  });
});

describe('chooseSink', () => {
  const config = (sink: 'auto' | 'sqs' | 'stdout', queueUrl: string | null, valkeyUrl: string | null) => ({ sink, sqs: { queueUrl }, state: { valkeyUrl } }) as Parameters<typeof chooseSink>[0];
  const queue = 'https://sqs.us-east-1.amazonaws.com/123456789012/q';

  it.each([
    ['auto', queue, 'redis://v:6379', false, 'sqs'],
    ['auto', null, null, false, 'stdout'],
    ['stdout', null, 'redis://v:6379', false, 'stdout'],
    ['stdout', queue, 'redis://v:6379', false, 'stdout'],
    ['auto', null, 'redis://v:6379', true, 'dry-run'],
  ] as const)('sink %s, queue %s, valkey %s, dry run %s → %s', (sink, queueUrl, valkeyUrl, dryRun, expected) => {
    expect(chooseSink(config(sink, queueUrl, valkeyUrl), dryRun)).toBe(expected);
  });

  it('refuses auto with Valkey state and no queue, and sqs with no queue', () => {
    expect(() => chooseSink(config('auto', null, 'redis://v:6379'), false)).toThrow(/SQS_QUEUE_URL unset or empty/);
    expect(() => chooseSink(config('sqs', null, null), false)).toThrow(/needs a queue URL/);
  });
});

describe('state.valkeyUrl', () => {
  const load = (url: string) => () => loadConfig({ env: { VALKEY_URL: url } });
  it.each([
    ['redis://127.0.0.1:6379/abc', 'database "abc" is not a number'],
    ['http://127.0.0.1:6379', 'scheme must be redis:// or rediss://'],
    ['not a url', 'is not a URL'],
  ])('refuses %s', (url, problem) => {
    expect(load(url)).toThrow(ValidationError);
    expect(load(url)).toThrow(problem);
  });

  it.each(['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/3', 'rediss://user:pw@cache.example:6380/0'])('accepts %s', (url) => {
    expect(load(url)().state.valkeyUrl).toBe(url);
  });
});

describe('message settings', () => {
  const load = (enqueue: Record<string, unknown>) => () => loadConfig({ env: {}, overrides: { enqueue } });
  it('refuses a priority the worker does not know', () => {
    expect(load({ priority: 'urgent' })).toThrow(/enqueue\.priority/);
    expect(load({ priority: 'high' })().enqueue.priority).toBe('high');
  });

  it('refuses a request ID prefix that would make every FIFO entry fail', () => {
    expect(load({ requestIdPrefix: 'x'.repeat(92) })).toThrow(/at most 91 characters/);
    expect(load({ requestIdPrefix: 'has space' })).toThrow(/enqueue\.requestIdPrefix/);
    expect(load({ requestIdPrefix: 'x'.repeat(91) })().enqueue.requestIdPrefix).toHaveLength(91);
  });
});

describe('state.valkeyCluster', () => {
  it('takes a seed node with database 0 only', () => {
    expect(loadConfig({ env: { VALKEY_URL: 'redis://seed:6379', VALKEY_CLUSTER: 'true' } }).state.valkeyCluster).toBe(true);
    expect(() => loadConfig({ env: { VALKEY_URL: 'redis://seed:6379/2', VALKEY_CLUSTER: 'true' } })).toThrow(/database 0: a cluster has no other/);
    expect(() => loadConfig({ env: { VALKEY_CLUSTER: 'true' } })).toThrow(/valkeyCluster needs valkeyUrl/);
    expect(() => loadConfig({ env: { VALKEY_URL: 'redis://seed:6379', VALKEY_CLUSTER: 'yes' } })).toThrow(/state\.valkeyCluster/);
  });
});
