import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import kafkajs from 'kafkajs';
import type { Config } from '../config/schema.js';
import { kafkaSchema } from '../config/kafka-schema.js';
import { FfError, errorMessage } from '../errors.js';
import { mskIamTokenProvider, type MskTokenSigner } from './msk-iam.js';

/** The `kafka` config section: how every Kafka client of the project connects. */
export type KafkaSettings = Config['kafka'];

/** No TLS, no SASL, the default group prefix: what a caller that passes no settings gets. */
export const DEFAULT_KAFKA_SETTINGS: KafkaSettings = kafkaSchema.parse({});

/** What differs between clients: each picks timeouts and retries for its own job. */
export interface KafkaClientTuning {
  connectionTimeout?: number;
  requestTimeout?: number;
  retry?: kafkajs.RetryOptions;
}

/** Seams for tests: file reads (TLS material) and the MSK IAM signer. */
export interface KafkaClientDeps {
  readFile?: (file: string) => Buffer;
  mskSigner?: MskTokenSigner;
  env?: NodeJS.ProcessEnv;
}

/**
 * The kafkajs configuration for `settings`: brokers, TLS and SASL, with kafkajs's own logging off
 * (it would print broker errors to stdout, which carries NDJSON samples). Files are read here, so a
 * missing CA or key fails before any connection, naming the key to fix.
 */
export function kafkaClientConfig(settings: KafkaSettings, clientId: string, tuning: KafkaClientTuning = {}, deps: KafkaClientDeps = {}): kafkajs.KafkaConfig {
  const config: kafkajs.KafkaConfig = { clientId, brokers: settings.brokers, logLevel: kafkajs.logLevel.NOTHING, ...tuning };
  const ssl = tlsOptions(settings.ssl, deps.readFile ?? ((file) => readFileSync(file)));
  if (ssl !== undefined) config.ssl = ssl;
  if (settings.sasl !== null) config.sasl = saslOptions(settings.sasl, deps);
  return config;
}

/** A kafkajs client for `settings` (see kafkaClientConfig); every Kafka client is built here. */
export function kafkaClient(settings: KafkaSettings, clientId: string, tuning: KafkaClientTuning = {}, deps: KafkaClientDeps = {}): kafkajs.Kafka {
  return new kafkajs.Kafka(kafkaClientConfig(settings, clientId, tuning, deps));
}

type TlsSettings = KafkaSettings['ssl'];

function tlsOptions(tls: TlsSettings, readFile: (file: string) => Buffer): ConnectionOptions | boolean | undefined {
  const enabled = tls.enabled ?? (tls.caFile !== null || tls.certFile !== null);
  if (!enabled) return undefined;
  const read = (key: 'caFile' | 'certFile' | 'keyFile', file: string): Buffer => {
    try {
      return readFile(file);
    } catch (error) {
      throw new FfError('CONFIG_INVALID', `kafka.ssl.${key}: cannot read ${file}: ${errorMessage(error)}`, { cause: error });
    }
  };
  const options: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized };
  // A CA given replaces Node's bundled roots: the broker must chain to it.
  if (tls.caFile !== null) options.ca = [read('caFile', tls.caFile)];
  if (tls.certFile !== null && tls.keyFile !== null) {
    options.cert = read('certFile', tls.certFile);
    options.key = read('keyFile', tls.keyFile);
    if (tls.keyPassphrase !== null) options.passphrase = tls.keyPassphrase;
  }
  return options;
}

type SaslSettings = NonNullable<KafkaSettings['sasl']>;

function saslOptions(sasl: SaslSettings, deps: KafkaClientDeps): kafkajs.SASLOptions {
  if (sasl.mechanism === 'aws-msk-iam') {
    const env = deps.env ?? process.env;
    const region = sasl.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (!region) throw new FfError('CONFIG_INVALID', 'kafka.sasl.region: aws-msk-iam needs the cluster\'s region (kafka.sasl.region, KAFKA_SASL_REGION or AWS_REGION)');
    return { mechanism: 'oauthbearer', oauthBearerProvider: mskIamTokenProvider(region, deps.mskSigner) };
  }
  // The schema guarantees both for these mechanisms; checked again so a hand-built settings object
  // cannot send an empty password.
  if (sasl.username === null || sasl.password === null) throw new FfError('CONFIG_INVALID', `kafka.sasl: ${sasl.mechanism} needs username and password (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)`);
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password };
}
