import { z } from 'zod';

const nullableString = z.string().min(1).nullable().default(null);

/**
 * The one Kafka connection every Kafka client uses (`sample`, `investigate`, the consumer-lag gate,
 * feeds): src/kafka/client.ts turns it into a kafkajs client. README "Kafka connections".
 */
const kafkaTlsSchema = z
  .object({
    /** true: TLS. null: on when caFile or certFile is set. `kafka.ssl: true` is short for { enabled: true }. */
    enabled: z.boolean().nullable().default(null),
    /** PEM file of the CA(s) to trust instead of Node's bundled ones (a private CA). Env KAFKA_SSL_CA_FILE. */
    caFile: nullableString,
    /** Client certificate and its key (PEM), for brokers that require one (mutual TLS). */
    certFile: nullableString,
    keyFile: nullableString,
    /** The key file's passphrase when it is encrypted (env KAFKA_SSL_KEY_PASSPHRASE). */
    keyPassphrase: nullableString,
    /** false accepts any server certificate: for a throwaway test cluster only. */
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict()
  .refine((tls) => (tls.certFile === null) === (tls.keyFile === null), { message: 'certFile and keyFile go together (a client certificate needs its key)' });

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'aws-msk-iam'] as const;

const kafkaSaslSchema = z
  .object({
    mechanism: z.enum(KAFKA_SASL_MECHANISMS),
    /** plain and scram-*: the user (env KAFKA_SASL_USERNAME) and password (env KAFKA_SASL_PASSWORD). */
    username: nullableString,
    password: nullableString,
    /** aws-msk-iam: the cluster's region; null takes AWS_REGION. Credentials: the AWS default chain. */
    region: nullableString,
  })
  .strict()
  .refine((sasl) => sasl.mechanism === 'aws-msk-iam' || (sasl.username !== null && sasl.password !== null), {
    message: 'plain and scram-* need username and password (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)',
  })
  .refine((sasl) => sasl.mechanism !== 'aws-msk-iam' || (sasl.username === null && sasl.password === null), {
    message: 'aws-msk-iam signs with AWS credentials (the default chain): it takes no username or password',
  });

export const kafkaSchema = z
  .object({
    /** host:port list (env KAFKA_BROKERS, comma-separated); investigate.brokers and safety.consumerLag.brokers default to it. */
    brokers: z.array(z.string().min(1)).default([]),
    /**
     * Consumer groups the project joins (`sample`, `investigate`) are named `<groupPrefix>sample-<uuid>`:
     * one prefixed ACL on the group resource lets them in (env KAFKA_GROUP_PREFIX).
     */
    groupPrefix: z
      .string()
      .max(200)
      .regex(/^[A-Za-z0-9._-]*$/, { message: 'may hold only letters, digits, . _ - (a Kafka group id that any ACL tool can name)' })
      .default('ff-detector-'),
    ssl: z.preprocess((value) => (typeof value === 'boolean' ? { enabled: value } : value), kafkaTlsSchema).prefault({}),
    /** null: no SASL. */
    sasl: kafkaSaslSchema.nullable().default(null),
  })
  .strict()
  .refine((kafka) => kafka.sasl?.mechanism !== 'aws-msk-iam' || kafka.ssl.enabled !== false, {
    message: "sasl aws-msk-iam needs TLS (MSK's IAM listeners accept TLS only): leave ssl on",
    path: ['ssl'],
  });

/**
 * `kafka.brokers` is the default of the older, per-client broker lists: a config that sets only
 * `kafka.brokers` configures every client, one that also sets a client's list keeps it there. An
 * empty list counts as unset (the example config spells the lists out as `[]`).
 */
export function inheritKafkaBrokers(input: unknown): unknown {
  if (!isPlainObject(input) || !isPlainObject(input.kafka) || input.kafka.brokers === undefined) return input;
  const brokers = input.kafka.brokers;
  const withBrokers = (section: unknown): unknown => {
    if (section === undefined) return { brokers };
    // Something else than a mapping is left for the schema to reject.
    if (!isPlainObject(section)) return section;
    const own = section.brokers;
    return own === undefined || (Array.isArray(own) && own.length === 0) ? { ...section, brokers } : section;
  };
  const safety = input.safety === undefined ? {} : input.safety;
  return {
    ...input,
    investigate: withBrokers(input.investigate),
    safety: isPlainObject(safety) ? { ...safety, consumerLag: withBrokers(safety.consumerLag) } : safety,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
