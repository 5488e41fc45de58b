import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { KafkaLagReader } from '../../src/safety/consumer-lag.js';
import { runCli } from '../helpers/cli.js';
import { uniqueName } from '../helpers/services.js';

// The Kafka connection settings (config `kafka`, KAFKA_* variables) against the real test broker's
// secured listeners (scripts/kafka/server.properties): SASL PLAIN and SCRAM on one, TLS with a CA
// made at its start on another, TLS requiring a client certificate on a third. `sample kafka` runs
// as a user runs it (the CLI, configured by the environment); the lag gate's reader is built from
// the same configuration.

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run integration tests with \`npm test\`, which starts the services (scripts/services.sh env)`);
  return value;
}

const topic = uniqueName('auth-flags');
const group = uniqueName('auth-worker');
let admin: kafkajs.Admin;

beforeAll(async () => {
  // Set up over the plaintext listener: the secured ones are what is under test.
  const kafka = new kafkajs.Kafka({ clientId: 'kafka-auth-test', brokers: required('FFD_TEST_KAFKA_BROKERS').split(','), logLevel: kafkajs.logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: ['a', 'b', 'c', 'd'].map((value) => ({ key: `flag-${value}`, value })) });
  await producer.disconnect();
  // The worker's group has consumed one message of four: lag 3.
  await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] });
});

afterAll(async () => {
  await admin?.disconnect();
});

interface Case {
  name: string;
  env: () => Record<string, string>;
}

const sasl = (mechanism: string, user: string): Case['env'] => () => ({
  KAFKA_BROKERS: required('FFD_TEST_KAFKA_SASL_BROKERS'),
  KAFKA_SASL_MECHANISM: mechanism,
  KAFKA_SASL_USERNAME: required(`FFD_TEST_KAFKA_SASL_${user}_USER`),
  KAFKA_SASL_PASSWORD: required(`FFD_TEST_KAFKA_SASL_${user}_PASSWORD`),
});

const cases: Case[] = [
  { name: 'SASL PLAIN', env: sasl('plain', 'PLAIN') },
  { name: 'SASL SCRAM-SHA-256', env: sasl('scram-sha-256', 'SCRAM') },
  { name: 'SASL SCRAM-SHA-512', env: sasl('scram-sha-512', 'SCRAM') },
  // The CA file alone turns TLS on, and is then the only CA trusted.
  { name: 'TLS, broker certificate checked against the CA', env: () => ({ KAFKA_BROKERS: required('FFD_TEST_KAFKA_SSL_BROKERS'), KAFKA_SSL_CA_FILE: required('FFD_TEST_KAFKA_CA') }) },
  {
    name: 'mutual TLS (client certificate)',
    env: () => ({
      KAFKA_BROKERS: required('FFD_TEST_KAFKA_MTLS_BROKERS'),
      KAFKA_SSL_CA_FILE: required('FFD_TEST_KAFKA_CA'),
      KAFKA_SSL_CERT_FILE: required('FFD_TEST_KAFKA_CLIENT_CERT'),
      KAFKA_SSL_KEY_FILE: required('FFD_TEST_KAFKA_CLIENT_KEY'),
    }),
  },
];

const sampleCli = (env: Record<string, string>) => runCli(['sample', 'kafka', '--topic', topic, '--from-beginning', '--timeout', '5000'], { env });

async function readLag(env: Record<string, string>) {
  const config = loadConfig({ env });
  const reader = new KafkaLagReader(config.safety.consumerLag.brokers, 5000, config.kafka);
  try {
    return await reader.lag(group, topic, null);
  } finally {
    await reader.close();
  }
}

describe.each(cases)('over $name', ({ env }) => {
  it('sample kafka reads the topic', async () => {
    const result = await sampleCli(env());
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const records = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { key: string; value: string });
    expect(records.map((r) => r.value)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('the lag gate reads the consumer group', async () => {
    expect(await readLag(env())).toMatchObject({ group, topic, lag: 3, partitions: [{ partition: 0, lag: 3 }] });
  });
});

describe('failures are clear and keep secrets out', () => {
  const wrong = 'not-the-password-7f3a';

  it('a wrong SASL PLAIN password: sample fails naming the authentication, without the password', async () => {
    const result = await sampleCli({ ...sasl('plain', 'PLAIN')(), KAFKA_SASL_PASSWORD: wrong });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/ff-detector: error: cannot sample .* SASL PLAIN authentication failed: Authentication failed: Invalid username or password/);
    expect(result.stderr).not.toContain(wrong);
  });

  it('a wrong SCRAM password: the lag reader fails naming the authentication, without the password', async () => {
    const failure = readLag({ ...sasl('scram-sha-256', 'SCRAM')(), KAFKA_SASL_PASSWORD: wrong });
    await expect(failure).rejects.toThrow(/cannot read the lag of consumer group .*SASL SCRAM SHA256 authentication failed/);
    const message = await failure.catch((error: unknown) => (error instanceof Error ? `${error.message} ${String(error.cause)}` : ''));
    expect(message).not.toContain(wrong);
  });

  it('a broker certificate from a CA not trusted (Node\'s bundled roots only) is refused', async () => {
    const result = await sampleCli({ KAFKA_BROKERS: required('FFD_TEST_KAFKA_SSL_BROKERS'), KAFKA_SSL: 'true' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/ff-detector: error: cannot sample .* unable to verify the first certificate/);
  });

  it('a broker that requires a client certificate refuses a client without one', async () => {
    const result = await sampleCli({ KAFKA_BROKERS: required('FFD_TEST_KAFKA_MTLS_BROKERS'), KAFKA_SSL_CA_FILE: required('FFD_TEST_KAFKA_CA') });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ff-detector: error: cannot sample .* (bad certificate|certificate required)/);
  });

  it('a CA file that does not exist is a configuration error (exit 2) before any connection', async () => {
    const result = await sampleCli({ KAFKA_BROKERS: required('FFD_TEST_KAFKA_SSL_BROKERS'), KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ff-detector: error: kafka.ssl.caFile: cannot read /nonexistent/ca.pem');
  });
});

describe('ACLs: what README "Kafka connections" says a restricted user needs', () => {
  const { AclOperationTypes: Op, AclPermissionTypes, AclResourceTypes: Resource, ResourcePatternTypes: Pattern } = kafkajs;
  // The broker restricts only this user (super.users lists the others).
  const principal = (): string => `User:${required('FFD_TEST_KAFKA_SASL_ACL_USER')}`;
  const prefix = `${uniqueName('acl')}.`;
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    KAFKA_BROKERS: required('FFD_TEST_KAFKA_SASL_BROKERS'),
    KAFKA_SASL_MECHANISM: 'scram-sha-256',
    KAFKA_SASL_USERNAME: required('FFD_TEST_KAFKA_SASL_ACL_USER'),
    KAFKA_SASL_PASSWORD: required('FFD_TEST_KAFKA_SASL_ACL_PASSWORD'),
    ...extra,
  });

  beforeAll(async () => {
    const allow = (resourceType: kafkajs.AclResourceTypes, resourceName: string, resourcePatternType: kafkajs.ResourcePatternTypes, operations: kafkajs.AclOperationTypes[]): kafkajs.AclEntry[] =>
      operations.map((operation) => ({ resourceType, resourceName, resourcePatternType, principal: principal(), host: '*', operation, permissionType: AclPermissionTypes.ALLOW }));
    const acl = [
      // sample: read the flag topic, in groups under the prefix (DELETE: it removes its group).
      ...allow(Resource.TOPIC, topic, Pattern.LITERAL, [Op.READ, Op.DESCRIBE]),
      ...allow(Resource.GROUP, prefix, Pattern.PREFIXED, [Op.READ, Op.DESCRIBE, Op.DELETE]),
      // the lag gate: the worker's committed offsets.
      ...allow(Resource.GROUP, group, Pattern.LITERAL, [Op.DESCRIBE]),
    ];
    await admin.createAcls({ acl });
    // The broker applies ACLs from the metadata log: wait until it lists them all.
    const filter = { resourceType: Resource.ANY, resourcePatternType: Pattern.ANY, principal: principal(), host: '*', operation: Op.ANY, permissionType: AclPermissionTypes.ANY };
    await vi.waitFor(
      async () => {
        const { resources } = await admin.describeAcls(filter);
        const listed = resources.filter((r) => [topic, prefix, group].includes(r.resourceName)).flatMap((r) => r.acls);
        if (listed.length !== acl.length) throw new Error(`the broker lists ${listed.length} of ${acl.length} ACLs`);
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('sample kafka works in a group under kafka.groupPrefix, and leaves none behind', async () => {
    const result = await sampleCli(env({ KAFKA_GROUP_PREFIX: prefix }));
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(4);
    const { groups } = await admin.listGroups();
    expect(groups.filter((g) => g.groupId.startsWith(prefix))).toEqual([]);
  });

  it('with the default prefix, outside the ACL, the broker refuses the group', async () => {
    const result = await sampleCli(env());
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    // The broker answers GROUP_AUTHORIZATION_FAILED to the join; the sampler (consume(), which
    // seeks right after consumer.run without waiting for the join) reports it as the group "not
    // initialized". README "Kafka connections" lists that message under ACL troubleshooting.
    expect(result.stderr).toMatch(/ff-detector: error: cannot sample .*(Not authorized to access group|Consumer group was not initialized)/);
  });

  it('the lag gate needs DESCRIBE on the worker group and its topic, nothing more', async () => {
    expect(await readLag(env())).toMatchObject({ group, lag: 3 });
    const other = uniqueName('no-acl-group');
    const reader = new KafkaLagReader([required('FFD_TEST_KAFKA_SASL_BROKERS')], 5000, loadConfig({ env: env() }).kafka);
    try {
      // kafkajs drops FindCoordinator's GROUP_AUTHORIZATION_FAILED for this generic message (README
      // "Kafka connections" says what it means under ACLs).
      await expect(reader.lag(other, topic, null)).rejects.toThrow(`cannot read the lag of consumer group ${other} on ${topic}: Failed to find group coordinator`);
    } finally {
      await reader.close();
    }
  });
});
