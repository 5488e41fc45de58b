import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadConfig } from '../config/load.js';
import { EXIT_OK, EXIT_USAGE, FfError } from '../errors.js';
import { analyze, type Report, type Sample } from '../investigate/analyze.js';
import { matchKnownIds } from '../investigate/known-ids.js';
import { sampleKafka, type SampledRecord } from '../investigate/kafka-sampler.js';
import { investigateBucket } from '../investigate/bucket.js';
import { renderBucketMarkdown, renderMarkdown } from '../investigate/report-markdown.js';
import { Runtime } from '../runtime/runtime.js';
import { createLogger } from '../logger.js';
import { writeLine } from './output.js';
import { startFrom, type SampleKafkaFlags } from './sample.js';

export interface InvestigateKafkaFlags extends SampleKafkaFlags {
  input?: string;
  format?: 'md' | 'json';
  showValues?: boolean;
}

/**
 * `ff-detector investigate kafka`: samples the flag topic (or reads saved samples with --input)
 * and reports what it holds and whether strategy B can work.
 */
export async function investigateKafkaCommand(flags: InvestigateKafkaFlags): Promise<number> {
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG });
  const runtime = new Runtime(config, logger);
  let records: SampledRecord[];
  let source: string;
  if (flags.input) {
    records = await readSamples(flags.input);
    source = flags.input;
  } else {
    const brokers = flags.brokers ? flags.brokers.split(',') : config.investigate.brokers;
    const start = startFrom(flags);
    if (brokers.length === 0 || !start) {
      process.stderr.write(`ff-detector investigate kafka: ${brokers.length === 0 ? 'no brokers: give --brokers, KAFKA_BROKERS or --input' : 'choose one of --from-beginning, --latest, --since'}\n`);
      return EXIT_USAGE;
    }
    const topic = flags.topic ?? config.investigate.topic;
    records = await sampleKafka({ brokers, topic, count: flags.count ?? 1000, start, partition: flags.partition, timeoutMs: flags.timeout ?? 10_000, kafka: config.kafka });
    source = `kafka topic ${topic}`;
  }
  const idValues = new Map<string, string[]>();
  const analysed = analyze(records.map(toSample), { source, flag: config.flag, idPattern: runtime.idPattern, showValues: flags.showValues ?? false, idValues });
  try {
    const report = await withKnownIds(analysed, idValues, runtime);
    await writeLine(process.stdout, flags.format === 'json' ? JSON.stringify(report) : renderMarkdown(report, 'strategy B (kafka-topic)'));
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

/** With Valkey configured, sampled IDs are matched against the known set and loaded_users. */
async function withKnownIds<R extends Report>(report: R, idValues: Map<string, string[]>, runtime: Runtime): Promise<R> {
  if (!runtime.config.state.valkeyUrl || idValues.size === 0) return report;
  return (await matchKnownIds(report, idValues, (await runtime.openStore()).known)) as R;
}

function toSample(record: SampledRecord): Sample {
  const value = record.value === null ? Buffer.alloc(0) : Buffer.from(record.value, record.valueEncoding === 'base64' ? 'base64' : 'utf8');
  return { key: record.key, value, where: `partition ${record.partition} offset ${record.offset}` };
}

async function readSamples(file: string): Promise<SampledRecord[]> {
  const records: SampledRecord[] = [];
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    try {
      records.push(JSON.parse(text) as SampledRecord);
    } catch {
      throw new FfError('INPUT_MALFORMED', `${file}:${line}: not a JSON sample record`);
    }
  }
  return records;
}

export interface InvestigateS3Flags {
  config?: string;
  bucket?: string;
  prefix?: string;
  maxObjects?: number;
  sampleObjects?: number;
  format?: 'md' | 'json';
  showValues?: boolean;
  logLevel?: string;
}

/** `ff-detector investigate s3`: what the flag bucket holds and whether strategy C can work. */
export async function investigateS3Command(flags: InvestigateS3Flags): Promise<number> {
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG });
  const bucket = flags.bucket ?? config.investigate.bucket;
  if (!bucket) {
    process.stderr.write('ff-detector investigate s3: give --bucket (or investigate.bucket)\n');
    return EXIT_USAGE;
  }
  const runtime = new Runtime(config, logger);
  try {
    const idValues = new Map<string, string[]>();
    const analysed = await investigateBucket(runtime.objectStore, {
      bucket,
      prefix: flags.prefix ?? '',
      maxObjects: flags.maxObjects ?? 10_000,
      sampleObjects: flags.sampleObjects ?? 50,
      flag: config.flag,
      idPattern: runtime.idPattern,
      showValues: flags.showValues ?? false,
      idValues,
    });
    const report = await withKnownIds(analysed, idValues, runtime);
    await writeLine(process.stdout, flags.format === 'json' ? JSON.stringify(report) : renderBucketMarkdown(report));
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}
