import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { ValidationError, FfError, errorMessage } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { expandEnvironment } from './expand-environment.js';

/**
 * The package's root (the nearest folder with a package.json above this module, whether it runs
 * from src/ or dist/src/): the embedded default's sample files live in its config/ folder.
 */
export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return start;
  }
}

type Layer = Record<string, unknown>;

export interface LoadConfigOptions {
  /** YAML or JSON file (--config). */
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** CLI flags, already shaped like the config (e.g. { enqueue: { budget: 5 } }). */
  overrides?: Layer;
  cwd?: string;
}

/** Fields holding file locations, with the folder a default value is relative to. */
const PATH_FIELDS: ReadonlyArray<{ section: string; key: string; defaultBase: 'package' | 'cwd' }> = [
  { section: 'candidates', key: 'path', defaultBase: 'package' },
  { section: 'flags', key: 'rules', defaultBase: 'package' },
  { section: 'state', key: 'file', defaultBase: 'cwd' },
];

/**
 * Builds the configuration from defaults → file → environment → flags and validates it once,
 * naming every bad field. Relative paths resolve against the config file's folder (file layer),
 * the working directory (flags) or the package root (embedded defaults).
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const fileLayer = options.configPath ? readConfigFile(path.resolve(cwd, options.configPath)) : {};
  const flagLayer = resolvePaths(options.overrides ?? {}, cwd);
  const merged = mergeLayers(mergeLayers(fileLayer, envLayer(env)), flagLayer);

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const source = options.configPath ? `configuration (${options.configPath} + environment + flags)` : 'configuration';
    const where = (keys: PropertyKey[]): string => {
      const key = keys.join('.');
      const origin = originOf(key, { flags: flagLayer, env: envLayer(env), file: fileLayer }, options.configPath);
      return `${key || '(root)'}${origin ? ` (${origin})` : ''}`;
    };
    throw new ValidationError(
      'CONFIG_INVALID',
      source,
      parsed.error.issues.map((issue) => `${where(issue.path)}: ${issue.message}`),
    );
  }
  const config = parsed.data;
  // `${NAME}` in secrets-bearing values (headers, provider arguments) comes from the environment.
  const missing: string[] = [];
  const { http, openfeature } = config.flags;
  if (http) http.headers = expandEnvironment(http.headers, env, 'flags.http.headers', missing) as Record<string, string>;
  if (openfeature) openfeature.args = openfeature.args.map((arg, index) => expandEnvironment(arg, env, `flags.openfeature.args.${index}`, missing));
  if (missing.length > 0) throw new ValidationError('CONFIG_INVALID', 'configuration', missing);
  for (const field of PATH_FIELDS) {
    const given = sectionOf(merged, field.section)?.[field.key];
    if (given !== undefined) continue;
    const section = config[field.section as 'candidates' | 'flags' | 'state'] as Record<string, unknown>;
    const base = field.defaultBase === 'package' ? PACKAGE_ROOT : cwd;
    section[field.key] = resolveLocation(String(section[field.key]), base);
  }
  return config;
}

function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new FfError('CONFIG_INVALID', `cannot read config file ${file}: ${errorMessage(error)}`, { cause: error });
  }
  let value: unknown;
  try {
    value = YAML.parse(text, { prettyErrors: true });
  } catch (error) {
    throw new ValidationError('CONFIG_INVALID', `config file ${file}`, [`not valid YAML/JSON: ${errorMessage(error)}`]);
  }
  if (value === null || value === undefined) return {};
  if (!isRecord(value)) throw new ValidationError('CONFIG_INVALID', `config file ${file}`, ['(root): must be a mapping']);
  return resolvePaths(value, path.dirname(file));
}

/** Environment variables and the config fields they set (design.md section 6). */
const SNOWFLAKE_ENV: Record<string, string> = {
  SNOWFLAKE_ACCOUNT: 'account',
  SNOWFLAKE_USER: 'username',
  SNOWFLAKE_PASSWORD: 'password',
  SNOWFLAKE_PRIVATE_KEY_PATH: 'privateKeyPath',
  SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: 'privateKeyPassphrase',
  SNOWFLAKE_WAREHOUSE: 'warehouse',
  SNOWFLAKE_ROLE: 'role',
  SNOWFLAKE_DATABASE: 'database',
  SNOWFLAKE_SCHEMA: 'schema',
  SNOWFLAKE_ACCESS_URL: 'accessUrl',
};

function envLayer(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = {};
  const state: Layer = {};
  if (env.VALKEY_URL) state.valkeyUrl = env.VALKEY_URL;
  if (env.VALKEY_CLUSTER) state.valkeyCluster = env.VALKEY_CLUSTER === 'true' || env.VALKEY_CLUSTER === '1' ? true : env.VALKEY_CLUSTER;
  if (Object.keys(state).length > 0) layer.state = state;
  const sqs: Layer = {};
  if (env.SQS_QUEUE_URL) sqs.queueUrl = env.SQS_QUEUE_URL;
  if (env.AWS_REGION) sqs.region = env.AWS_REGION;
  // The AWS SDK's own variables for a custom endpoint, read here so that no adapter reads them.
  const sqsEndpoint = env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL;
  if (sqsEndpoint) sqs.endpoint = sqsEndpoint;
  if (Object.keys(sqs).length > 0) layer.sqs = sqs;
  const s3Endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (s3Endpoint) layer.s3 = { endpoint: s3Endpoint };
  const snowflake: Layer = {};
  for (const [variable, field] of Object.entries(SNOWFLAKE_ENV)) if (env[variable]) snowflake[field] = env[variable];
  if (Object.keys(snowflake).length > 0) layer.candidates = { snowflake };
  const admin: Layer = {};
  if (env.ADMIN_HOST) admin.host = env.ADMIN_HOST;
  if (env.ADMIN_PORT) admin.port = Number(env.ADMIN_PORT);
  if (env.ADMIN_TOKEN) admin.token = env.ADMIN_TOKEN;
  if (Object.keys(admin).length > 0) layer.admin = admin;
  const kafka = kafkaEnv(env);
  if (Object.keys(kafka).length > 0) layer.kafka = kafka;
  if (env.KAFKA_BROKERS) {
    // Also the per-client lists: the environment wins over a config file that sets them.
    const brokers = kafka.brokers;
    layer.safety = { consumerLag: { brokers } };
    layer.investigate = { brokers };
  }
  return layer;
}

/** KAFKA_* variables: the `kafka` section (README "Kafka connections"). */
function kafkaEnv(env: NodeJS.ProcessEnv): Layer {
  const kafka: Layer = {};
  if (env.KAFKA_BROKERS) kafka.brokers = env.KAFKA_BROKERS.split(',').map((broker) => broker.trim()).filter(Boolean);
  if (env.KAFKA_GROUP_PREFIX !== undefined) kafka.groupPrefix = env.KAFKA_GROUP_PREFIX;
  const ssl: Layer = {};
  if (env.KAFKA_SSL) ssl.enabled = booleanEnv(env.KAFKA_SSL);
  for (const [variable, field] of Object.entries(KAFKA_SSL_ENV)) if (env[variable]) ssl[field] = env[variable];
  if (env.KAFKA_SSL_REJECT_UNAUTHORIZED) ssl.rejectUnauthorized = booleanEnv(env.KAFKA_SSL_REJECT_UNAUTHORIZED);
  if (Object.keys(ssl).length > 0) kafka.ssl = ssl;
  const sasl: Layer = {};
  for (const [variable, field] of Object.entries(KAFKA_SASL_ENV)) if (env[variable]) sasl[field] = env[variable];
  if (Object.keys(sasl).length > 0) kafka.sasl = sasl;
  return kafka;
}

const KAFKA_SSL_ENV: Record<string, string> = {
  KAFKA_SSL_CA_FILE: 'caFile',
  KAFKA_SSL_CERT_FILE: 'certFile',
  KAFKA_SSL_KEY_FILE: 'keyFile',
  KAFKA_SSL_KEY_PASSPHRASE: 'keyPassphrase',
};

const KAFKA_SASL_ENV: Record<string, string> = {
  KAFKA_SASL_MECHANISM: 'mechanism',
  KAFKA_SASL_USERNAME: 'username',
  KAFKA_SASL_PASSWORD: 'password',
  KAFKA_SASL_REGION: 'region',
};

/** true/1 and false/0; anything else is passed on for the schema to name as not a boolean. */
function booleanEnv(value: string): boolean | string {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return value;
}

/** The command-line options that set config keys (src/cli/options.ts, overridesFrom). */
const OPTION_OF: Record<string, string> = {
  sink: '--sink',
  'candidates.path': '--candidates',
  'candidates.column': '--column',
  'flags.rules': '--flags',
  'enqueue.rateLimit': '--rate-limit',
  'enqueue.budget': '--budget',
  'state.file': '--state-file',
};

const ENV_OF: Record<string, string> = {
  'state.valkeyUrl': 'VALKEY_URL',
  'state.valkeyCluster': 'VALKEY_CLUSTER',
  'sqs.queueUrl': 'SQS_QUEUE_URL',
  'sqs.region': 'AWS_REGION',
  'sqs.endpoint': 'AWS_ENDPOINT_URL_SQS or AWS_ENDPOINT_URL',
  's3.endpoint': 'AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL',
  'admin.host': 'ADMIN_HOST',
  'admin.port': 'ADMIN_PORT',
  'admin.token': 'ADMIN_TOKEN',
  'safety.consumerLag.brokers': 'KAFKA_BROKERS',
  'investigate.brokers': 'KAFKA_BROKERS',
  'kafka.brokers': 'KAFKA_BROKERS',
  'kafka.groupPrefix': 'KAFKA_GROUP_PREFIX',
  'kafka.ssl.enabled': 'KAFKA_SSL',
  'kafka.ssl.rejectUnauthorized': 'KAFKA_SSL_REJECT_UNAUTHORIZED',
  ...Object.fromEntries(Object.entries(KAFKA_SSL_ENV).map(([variable, field]) => [`kafka.ssl.${field}`, variable])),
  ...Object.fromEntries(Object.entries(KAFKA_SASL_ENV).map(([variable, field]) => [`kafka.sasl.${field}`, variable])),
  ...Object.fromEntries(Object.entries(SNOWFLAKE_ENV).map(([variable, field]) => [`candidates.snowflake.${field}`, variable])),
};

/**
 * Where the value of a bad key came from, so the error points at what to fix: the option or
 * environment variable (the layers above the file), else the config file.
 */
function originOf(key: string, layers: { flags: Layer; env: Layer; file: Layer }, configPath: string | undefined): string | null {
  const parts = key.split('.');
  // The key itself, or the nearest section above it (a refinement reports on its section).
  const prefixes = parts.map((_, i) => parts.slice(0, parts.length - i).join('.'));
  const given = (layer: Layer, path: string): boolean => path.split('.').reduce<unknown>((node, part) => (isRecord(node) ? node[part] : undefined), layer) !== undefined;
  for (const prefix of prefixes) {
    const option = OPTION_OF[prefix];
    if (option && given(layers.flags, prefix)) return option;
    const variable = ENV_OF[prefix];
    if (variable && given(layers.env, prefix)) return variable;
  }
  // Blamed on the file only when the file set it; else it is a default the others conflict with.
  return configPath && given(layers.file, parts[0] ?? key) ? `in ${configPath}` : null;
}

function resolvePaths(layer: Layer, base: string): Layer {
  const copy: Layer = { ...layer };
  for (const field of PATH_FIELDS) {
    const section = sectionOf(copy, field.section);
    const value = section?.[field.key];
    if (section && typeof value === 'string') {
      copy[field.section] = { ...section, [field.key]: resolveLocation(value, base) };
    }
  }
  return copy;
}

/** s3:// URIs stay as they are; local paths become absolute. */
export function resolveLocation(location: string, base: string): string {
  return location.startsWith('s3://') ? location : path.resolve(base, location);
}

function mergeLayers(lower: Layer, upper: Layer): Layer {
  const result: Layer = { ...lower };
  for (const [key, value] of Object.entries(upper)) {
    const below = result[key];
    result[key] = isRecord(value) && isRecord(below) ? mergeLayers(below, value) : value;
  }
  return result;
}

function sectionOf(layer: Layer, name: string): Layer | undefined {
  const section = layer[name];
  return isRecord(section) ? section : undefined;
}

function isRecord(value: unknown): value is Layer {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
