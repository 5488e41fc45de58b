import kafkajs from 'kafkajs';
import { analyze } from '../src/investigate/analyze.js';
import { sampleKafka } from '../src/investigate/kafka-sampler.js';

const FLAG = 'consumer_graph_ingestion';

/** Messages/s of `sample kafka` and of the analysis behind `investigate kafka`, over 10,000 messages. */
export async function benchInvestigate(brokers: string[], messages: number): Promise<{ samplePerS: number; analyzePerS: number; verdict: string }> {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-investigate', brokers, logLevel: kafkajs.logLevel.NOTHING });
  const topic = `bench-flags-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  for (let start = 0; start < messages; start += 1000) {
    await producer.send({
      topic,
      messages: Array.from({ length: Math.min(1000, messages - start) }, (_, i) => {
        const n = start + i;
        const value = n % 3 === 0 ? { name: FLAG, enabled: true, percentage: n % 100, gates: { actors: [`user-${n}`, `user-${n + 1}`] }, updated_at: new Date().toISOString() } : { flag: `flag_${n % 50}`, user_id: `user-${n}`, action: 'enable' };
        return { key: `k${n % 200}`, value: JSON.stringify(value) };
      }),
    });
  }
  await producer.disconnect();
  try {
    let started = performance.now();
    const records = await sampleKafka({ brokers, topic, count: messages, start: { from: 'beginning' }, timeoutMs: 30_000 });
    const samplePerS = records.length / ((performance.now() - started) / 1000);
    if (records.length !== messages) throw new Error(`sampled ${records.length} of ${messages}`);
    started = performance.now();
    const report = analyze(
      records.map((record) => ({ key: record.key, value: Buffer.from(record.value ?? '', 'utf8') })),
      { source: topic, flag: FLAG, idPattern: /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/ },
    );
    const analyzePerS = records.length / ((performance.now() - started) / 1000);
    return { samplePerS, analyzePerS, verdict: report.verdict.result };
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}
