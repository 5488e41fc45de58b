import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { loadConfig } from '../config/load.js';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { createLogger } from '../logger.js';
import { sampleKafka, type SampleStart } from '../investigate/kafka-sampler.js';
import { parseSince } from './options.js';
import { writeLine } from './output.js';

// Also checked while the command line is parsed (options.ts), so a bad value exits 2.
export { parseSince };

export interface SampleKafkaFlags {
  config?: string;
  brokers?: string;
  topic?: string;
  count?: number;
  fromBeginning?: boolean;
  latest?: boolean;
  since?: string;
  partition?: number;
  out?: string;
  timeout?: number;
  logLevel?: string;
}

/** `ff-detector sample kafka`: raw messages of the flag topic as NDJSON, read-only. */
export async function sampleKafkaCommand(flags: SampleKafkaFlags): Promise<number> {
  const logger = createLogger(flags.logLevel);
  const config = loadConfig({ configPath: flags.config ?? process.env.FF_DETECTOR_CONFIG });
  const brokers = flags.brokers ? flags.brokers.split(',') : config.investigate.brokers;
  const start = startFrom(flags);
  if (brokers.length === 0 || !start) {
    process.stderr.write(`ff-detector sample kafka: ${brokers.length === 0 ? 'no brokers: give --brokers or KAFKA_BROKERS' : 'choose one of --from-beginning, --latest, --since'}\n`);
    return EXIT_USAGE;
  }
  const topic = flags.topic ?? config.investigate.topic;
  const records = await sampleKafka({ brokers, topic, count: flags.count ?? 100, start, partition: flags.partition, timeoutMs: flags.timeout ?? 10_000, kafka: config.kafka });
  const out: Writable = flags.out ? createWriteStream(flags.out) : process.stdout;
  for (const record of records) await writeLine(out, JSON.stringify(record));
  if (flags.out) {
    out.end();
    await once(out, 'finish');
  }
  logger.info({ topic, records: records.length, out: flags.out ?? 'stdout' }, `sampled ${records.length} messages from ${topic}`);
  return EXIT_OK;
}

/** Where to start reading; undefined when more than one of the options is given. */
export function startFrom(flags: Pick<SampleKafkaFlags, 'fromBeginning' | 'latest' | 'since'>): SampleStart | undefined {
  if ([flags.fromBeginning, flags.latest, flags.since !== undefined].filter(Boolean).length > 1) return undefined;
  if (flags.since !== undefined) return { from: 'since', timestamp: parseSince(flags.since) };
  return flags.latest ? { from: 'latest' } : { from: 'beginning' };
}
