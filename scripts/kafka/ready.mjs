// Exits 0 once the broker answers a Metadata request. Also warms up the group coordinator
// (__consumer_offsets is created on first use), so tests do not see transient coordinator errors.
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const kafka = new Kafka({ clientId: 'ready', brokers: [process.argv[2]], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000, requestTimeout: 3000 });
const admin = kafka.admin();
try {
  await admin.connect();
  const cluster = await admin.describeCluster();
  if (cluster.brokers.length === 0) process.exit(1);
  await admin.fetchOffsets({ groupId: '__ready_probe', topics: [] });
  await admin.disconnect();
  process.exit(0);
} catch {
  process.exit(1);
}
