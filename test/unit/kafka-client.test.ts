import { afterEach, describe, expect, it, vi } from 'vitest';
import type kafkajs from 'kafkajs';
import { loadConfig } from '../../src/config/load.js';
import { FfError, ValidationError } from '../../src/errors.js';
import type * as ClientModule from '../../src/kafka/client.js';
import { DEFAULT_KAFKA_SETTINGS, kafkaClient, kafkaClientConfig, type KafkaSettings } from '../../src/kafka/client.js';
import { sampleKafka } from '../../src/investigate/kafka-sampler.js';
import { KafkaLagReader } from '../../src/safety/consumer-lag.js';
import { mskIamTokenProvider, type MskTokenSigner } from '../../src/kafka/msk-iam.js';
import { writeTemp } from '../helpers/files.js';

// The one Kafka connection config (src/kafka/client.ts): what kafkajs is given for each setting,
// how the config file and KAFKA_* variables fill it, and MSK IAM's token provider (no MSK here:
// the signer is mocked, and the real one signs offline with fake credentials).

// Only the factory is replaced (by a spy that builds the real client unless a test fakes it): the
// sampler and the lag reader must build their clients through it.
vi.mock('../../src/kafka/client.js', async (importOriginal) => {
  const original = await importOriginal<typeof ClientModule>();
  return { ...original, kafkaClient: vi.fn(original.kafkaClient) };
});

const settingsFrom = (env: Record<string, string>, file?: string): KafkaSettings => loadConfig({ env, configPath: file }).kafka;

/** The error a function throws (fails the test when it throws none). */
function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

const configError = (env: Record<string, string>, file?: string): string => {
  const error = thrown(() => loadConfig({ env, configPath: file }));
  expect(error).toBeInstanceOf(ValidationError);
  return error.message;
};

/** A readFile seam that knows a few files. */
const files = (known: Record<string, string>) => (file: string): Buffer => {
  const text = known[file];
  if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${file}'`);
  return Buffer.from(text);
};

describe('the kafka config section', () => {
  it('defaults to plaintext, no SASL, group prefix ff-detector-', () => {
    expect(settingsFrom({})).toEqual({
      brokers: [],
      groupPrefix: 'ff-detector-',
      ssl: { enabled: null, caFile: null, certFile: null, keyFile: null, keyPassphrase: null, rejectUnauthorized: true },
      sasl: null,
    });
    expect(DEFAULT_KAFKA_SETTINGS).toEqual(settingsFrom({}));
  });

  it('KAFKA_BROKERS sets kafka.brokers and still the per-client lists', () => {
    const config = loadConfig({ env: { KAFKA_BROKERS: 'a:9092, b:9092' } });
    expect(config.kafka.brokers).toEqual(['a:9092', 'b:9092']);
    expect(config.investigate.brokers).toEqual(['a:9092', 'b:9092']);
    expect(config.safety.consumerLag.brokers).toEqual(['a:9092', 'b:9092']);
  });

  it('kafka.brokers in a file is the default of investigate.brokers and safety.consumerLag.brokers', () => {
    const file = writeTemp('kafka.yaml', 'kafka:\n  brokers: [k:9092]\nsafety:\n  consumerLag:\n    enabled: true\n    groups: [{ group: worker, topic: loads }]\n');
    const config = loadConfig({ env: {}, configPath: file });
    expect(config.investigate.brokers).toEqual(['k:9092']);
    // The gate's "enabled needs brokers" check passes on the inherited list.
    expect(config.safety.consumerLag).toMatchObject({ enabled: true, brokers: ['k:9092'] });
    const own = writeTemp('own.yaml', 'kafka:\n  brokers: [k:9092]\ninvestigate:\n  brokers: [flags:9092]\n');
    expect(loadConfig({ env: {}, configPath: own }).investigate.brokers).toEqual(['flags:9092']);
    // An empty list, as the example config spells it, counts as unset.
    const empty = writeTemp('empty.yaml', 'kafka:\n  brokers: [k:9092]\ninvestigate:\n  brokers: []\nsafety:\n  consumerLag:\n    brokers: []\n');
    expect(loadConfig({ env: {}, configPath: empty })).toMatchObject({ investigate: { brokers: ['k:9092'] }, safety: { consumerLag: { brokers: ['k:9092'] } } });
  });

  it('maps the KAFKA_* variables', () => {
    const settings = settingsFrom({
      KAFKA_GROUP_PREFIX: 'team-a.',
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: '/etc/ca.pem',
      KAFKA_SSL_CERT_FILE: '/etc/client.pem',
      KAFKA_SSL_KEY_FILE: '/etc/client.key',
      KAFKA_SSL_KEY_PASSPHRASE: 'key-secret',
      KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'detector',
      KAFKA_SASL_PASSWORD: 'pa55',
    });
    expect(settings).toMatchObject({
      groupPrefix: 'team-a.',
      ssl: { enabled: true, caFile: '/etc/ca.pem', certFile: '/etc/client.pem', keyFile: '/etc/client.key', keyPassphrase: 'key-secret', rejectUnauthorized: false },
      sasl: { mechanism: 'scram-sha-512', username: 'detector', password: 'pa55', region: null },
    });
  });

  it('takes `ssl: true` as short for { enabled: true }, and the password from the environment over a file', () => {
    const file = writeTemp('sasl.yaml', 'kafka:\n  ssl: true\n  sasl:\n    mechanism: plain\n    username: detector\n');
    expect(settingsFrom({ KAFKA_SASL_PASSWORD: 'from-env' }, file)).toMatchObject({ ssl: { enabled: true }, sasl: { mechanism: 'plain', username: 'detector', password: 'from-env' } });
  });

  it('refuses incomplete or contradictory settings, naming the variable and never echoing a secret', () => {
    const noUser = configError({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'hunter2-secret' });
    expect(noUser).toContain('need username and password (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)');
    expect(noUser).not.toContain('hunter2-secret');
    expect(configError({ KAFKA_SASL_MECHANISM: 'gssapi' })).toMatch(/kafka\.sasl\.mechanism \(KAFKA_SASL_MECHANISM\)/);
    expect(configError({ KAFKA_SSL_CERT_FILE: '/c.pem' })).toContain('certFile and keyFile go together');
    expect(configError({ KAFKA_SSL: 'yes' })).toMatch(/kafka\.ssl\.enabled \(KAFKA_SSL\)/);
    expect(configError({ KAFKA_GROUP_PREFIX: 'has space' })).toMatch(/kafka\.groupPrefix \(KAFKA_GROUP_PREFIX\)/);
    expect(configError({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'false' })).toContain("aws-msk-iam needs TLS");
    expect(configError({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p-secret' })).toContain('takes no username or password');
  });
});

describe('kafkaClientConfig', () => {
  const base: KafkaSettings = { ...DEFAULT_KAFKA_SETTINGS, brokers: ['b1:9092', 'b2:9092'] };

  it('plaintext: brokers, client id, tuning, kafkajs logging off; no ssl or sasl', () => {
    const config = kafkaClientConfig(base, 'ff-detector-test', { requestTimeout: 1234, retry: { retries: 1 } });
    expect(config).toEqual({ clientId: 'ff-detector-test', brokers: ['b1:9092', 'b2:9092'], logLevel: 0, requestTimeout: 1234, retry: { retries: 1 } });
  });

  it('TLS: on alone, with a CA (replacing the bundled roots), with a client certificate', () => {
    const readFile = files({ '/ca.pem': 'CA', '/client.pem': 'CERT', '/client.key': 'KEY' });
    const on = { ...base, ssl: { ...base.ssl, enabled: true } };
    expect(kafkaClientConfig(on, 'c', {}, { readFile }).ssl).toEqual({ rejectUnauthorized: true });
    const ca = { ...base, ssl: { ...base.ssl, caFile: '/ca.pem' } };
    expect(kafkaClientConfig(ca, 'c', {}, { readFile }).ssl).toEqual({ rejectUnauthorized: true, ca: [Buffer.from('CA')] });
    const mutual = { ...base, ssl: { ...base.ssl, caFile: '/ca.pem', certFile: '/client.pem', keyFile: '/client.key', keyPassphrase: 'kp', rejectUnauthorized: false } };
    expect(kafkaClientConfig(mutual, 'c', {}, { readFile }).ssl).toEqual({ rejectUnauthorized: false, ca: [Buffer.from('CA')], cert: Buffer.from('CERT'), key: Buffer.from('KEY'), passphrase: 'kp' });
    // enabled: false wins over files that are set (TLS switched off on purpose).
    expect(kafkaClientConfig({ ...base, ssl: { ...ca.ssl, enabled: false } }, 'c', {}, { readFile }).ssl).toBeUndefined();
  });

  it('a TLS file that cannot be read fails before connecting, naming the key', () => {
    const error = thrown(() => kafkaClientConfig({ ...base, ssl: { ...base.ssl, caFile: '/missing.pem' } }, 'c', {}, { readFile: files({}) }));
    expect(error).toBeInstanceOf(FfError);
    expect(error.message).toMatch(/^kafka\.ssl\.caFile: cannot read \/missing\.pem: ENOENT/);
  });

  it.each(['plain', 'scram-sha-256', 'scram-sha-512'] as const)('SASL %s: username and password as kafkajs takes them', (mechanism) => {
    const config = kafkaClientConfig({ ...base, sasl: { mechanism, username: 'u', password: 'p', region: null } }, 'c');
    expect(config.sasl).toEqual({ mechanism, username: 'u', password: 'p' });
  });

  describe('AWS MSK IAM', () => {
    const msk: KafkaSettings = { ...base, ssl: { ...base.ssl, enabled: true }, sasl: { mechanism: 'aws-msk-iam', username: null, password: null, region: 'eu-west-1' } };
    const oauth = (config: kafkajs.KafkaConfig) => config.sasl as Extract<kafkajs.SASLOptions, { mechanism: 'oauthbearer' }>;

    it('is kafkajs oauthbearer over TLS, each token from the signer for the region', async () => {
      const signer = vi.fn<MskTokenSigner>().mockResolvedValueOnce({ token: 'token-1', expiryTime: 1 }).mockResolvedValueOnce({ token: 'token-2', expiryTime: 2 });
      const config = kafkaClientConfig(msk, 'c', {}, { mskSigner: signer });
      expect(config.ssl).toEqual({ rejectUnauthorized: true });
      expect(oauth(config).mechanism).toBe('oauthbearer');
      expect(signer).not.toHaveBeenCalled(); // signed when kafkajs authenticates, not when built
      expect(await oauth(config).oauthBearerProvider()).toEqual({ value: 'token-1' });
      // A new connection (or re-authentication) gets a fresh token.
      expect(await oauth(config).oauthBearerProvider()).toEqual({ value: 'token-2' });
      expect(signer.mock.calls).toEqual([[{ region: 'eu-west-1' }], [{ region: 'eu-west-1' }]]);
    });

    it('takes the region from AWS_REGION when kafka.sasl.region is unset, and fails clearly without one', async () => {
      const signer = vi.fn<MskTokenSigner>().mockResolvedValue({ token: 't', expiryTime: 1 });
      const unset: KafkaSettings = { ...msk, sasl: { mechanism: 'aws-msk-iam', username: null, password: null, region: null } };
      await oauth(kafkaClientConfig(unset, 'c', {}, { mskSigner: signer, env: { AWS_REGION: 'ap-south-1' } })).oauthBearerProvider();
      expect(signer).toHaveBeenCalledWith({ region: 'ap-south-1' });
      expect(thrown(() => kafkaClientConfig(unset, 'c', {}, { mskSigner: signer, env: {} })).message).toContain('aws-msk-iam needs the cluster\'s region');
    });

    it('a signer failure (no credentials) is reported with the region', async () => {
      const signer = vi.fn<MskTokenSigner>().mockRejectedValue(new Error('Could not load credentials from any providers'));
      await expect(oauth(kafkaClientConfig(msk, 'c', {}, { mskSigner: signer })).oauthBearerProvider()).rejects.toThrow(
        'cannot sign an MSK IAM token for region eu-west-1 (AWS default credential chain): Could not load credentials from any providers',
      );
    });

    it('comes from config: mechanism aws-msk-iam with TLS on', () => {
      const settings = settingsFrom({ KAFKA_BROKERS: 'b-1.msk:9098', KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SASL_REGION: 'us-east-2' });
      expect(settings.sasl).toEqual({ mechanism: 'aws-msk-iam', username: null, password: null, region: 'us-east-2' });
      expect(oauth(kafkaClientConfig(settings, 'c')).mechanism).toBe('oauthbearer');
    });
  });
});

describe('mskIamTokenProvider with the real signer (aws-msk-iam-sasl-signer-js)', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('signs offline from environment credentials: a presigned kafka-cluster:Connect request for the region', async () => {
    // The first source of the default chain; fake keys, as signing needs no network.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    vi.stubEnv('AWS_SESSION_TOKEN', '');
    const { value } = await mskIamTokenProvider('eu-central-1')();
    const url = new URL(Buffer.from(value, 'base64url').toString('utf8'));
    expect(url.host).toBe('kafka.eu-central-1.amazonaws.com');
    expect(url.searchParams.get('Action')).toBe('kafka-cluster:Connect');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^AKIAIOSFODNN7EXAMPLE\/\d{8}\/eu-central-1\/kafka-cluster\/aws4_request$/);
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(value).not.toContain('wJalrXUtnFEMI');
  });
});

describe('the clients build their connection with the factory', () => {
  const settings: KafkaSettings = { ...DEFAULT_KAFKA_SETTINGS, brokers: ['ignored:9092'], groupPrefix: 'acl-allowed.', sasl: { mechanism: 'plain', username: 'u', password: 'p', region: null } };

  it('sample: the given brokers with the TLS/SASL settings, in a group under the configured prefix', async () => {
    const groups: string[] = [];
    const deleted: string[][] = [];
    let deliver: (() => Promise<void>) | undefined;
    const fake = {
      admin: () => ({
        connect: async () => undefined,
        disconnect: async () => undefined,
        fetchTopicOffsets: async () => [{ partition: 0, offset: '1', low: '0', high: '1' }],
        deleteGroups: async (ids: string[]) => void deleted.push(ids),
      }),
      consumer: ({ groupId }: { groupId: string }) => {
        groups.push(groupId);
        return {
          connect: async () => undefined,
          disconnect: async () => undefined,
          subscribe: async () => undefined,
          run: async ({ eachMessage }: { eachMessage: (payload: { partition: number; message: kafkajs.KafkaMessage }) => Promise<void> }) => {
            const message = { offset: '0', timestamp: '0', key: Buffer.from('k'), value: Buffer.from('v'), headers: {}, attributes: 0 } as kafkajs.KafkaMessage;
            deliver = () => eachMessage({ partition: 0, message });
          },
          seek: () => void deliver?.(),
        };
      },
    } as unknown as kafkajs.Kafka;
    vi.mocked(kafkaClient).mockReturnValueOnce(fake);
    const records = await sampleKafka({ brokers: ['b:9094'], topic: 't', count: 5, start: { from: 'beginning' }, timeoutMs: 5000, kafka: settings });
    expect(records.map((r) => r.value)).toEqual(['v']);
    expect(vi.mocked(kafkaClient)).toHaveBeenLastCalledWith({ ...settings, brokers: ['b:9094'] }, 'ff-detector-sample', expect.objectContaining({ requestTimeout: 5000 }));
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatch(/^acl-allowed\.sample-[0-9a-f-]{36}$/);
    expect(deleted).toEqual([groups]);
  });

  it('the lag reader: its brokers with the TLS/SASL settings (and plaintext when given none)', async () => {
    const reader = new KafkaLagReader(['lag:9094'], 4000, settings);
    expect(vi.mocked(kafkaClient)).toHaveBeenLastCalledWith({ ...settings, brokers: ['lag:9094'] }, 'ff-detector-lag-gate', expect.objectContaining({ requestTimeout: 4000 }));
    await reader.close();
    const plain = new KafkaLagReader(['lag:9092'], 4000);
    expect(vi.mocked(kafkaClient)).toHaveBeenLastCalledWith({ ...DEFAULT_KAFKA_SETTINGS, brokers: ['lag:9092'] }, 'ff-detector-lag-gate', expect.any(Object));
    await plain.close();
  });
});
