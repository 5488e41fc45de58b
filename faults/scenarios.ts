import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { SqsFaultProxy, type SqsFault } from './sqs-fault-proxy.js';
import { FaultyTcpProxy, type TcpFault } from './tcp-proxy.js';
import { prng, runCli, World, type ScenarioResult, type Services } from './world.js';

// The detection runs of the campaign: a fault injected part-way through a real `ff-detector
// detect`, then a follow-up run with the fault gone, then the invariants measured.

/** SendMessageBatch calls in flight at once: one batch each, the bound on duplicates per fault. */
export const CONCURRENCY = 4;
const BATCH = 10;
const ATTEMPTS = 3;

const SENDING = [
  `sqs:\n  concurrency: ${CONCURRENCY}\n  maxAttempts: ${ATTEMPTS}\n  requestTimeoutMs: 1500\n  retryBaseMs: 20\n  retryMaxMs: 200\n  maxBacklog: 0`,
  'enqueue:\n  rateLimit: 5000\n  budget: 0',
].join('\n');

export interface ScenarioContext {
  services: Services;
  seed: number;
}

export interface Scenario {
  name: string;
  run(context: ScenarioContext): Promise<ScenarioResult>;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Every config: fast sending, no budget, no backlog gate (the queue fills up on purpose), a 1 s run lock. */
function detect(world: World, options: { extra?: string; candidates?: string; name?: string } = {}, through: { valkeyUrl?: string; sqsEndpoint?: string } = {}, whileRunning?: (child: ChildProcess) => void) {
  const config = world.config({ ...options, extra: `${SENDING}\n${options.extra ?? ''}`, state: '  runLockTtlMs: 1000\n' });
  return runCli(['detect', '--config', config], world.env(through), whileRunning);
}

/** A run through a fault that starts after `afterBatches` SendMessageBatch calls, then a clean follow-up. */
async function sqsFault(context: ScenarioContext, name: string, fault: SqsFault, afterBatches: number, bound: number, count = 5000): Promise<ScenarioResult> {
  const world = new World(context.services, name, count);
  await world.prepare();
  const proxy = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  proxy.onSendBatch = (stats) => {
    if (stats.sendBatches === afterBatches) proxy.set(fault);
  };
  try {
    const first = await detect(world, {}, { sqsEndpoint: proxy.endpoint });
    proxy.set({ kind: 'pass' });
    const second = await detect(world);
    return await world.measure(name, bound, `faulty run ${first.summary.status ?? `exit ${first.code}`}, follow-up ${second.summary.status ?? `exit ${second.code}`}`);
  } finally {
    await proxy.close();
  }
}

/** A TCP-level fault between the detector and Valkey, from the `afterBatches`-th send on. */
async function valkeyFault(context: ScenarioContext, name: string, inject: (proxy: FaultyTcpProxy) => void, afterBatches: number): Promise<ScenarioResult> {
  const world = new World(context.services, name, 5000);
  await world.prepare();
  const target = new URL(context.services.valkeyUrl);
  const valkey = await FaultyTcpProxy.start({ host: target.hostname, port: Number(target.port) });
  const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  counter.onSendBatch = (stats) => {
    if (stats.sendBatches === afterBatches) inject(valkey);
  };
  try {
    const first = await detect(world, {}, { valkeyUrl: `redis://127.0.0.1:${valkey.port}`, sqsEndpoint: counter.endpoint });
    valkey.set({ kind: 'pass' });
    valkey.reset();
    const second = await detect(world);
    return await world.measure(name, CONCURRENCY * BATCH, `faulty run ${first.summary.status ?? `exit ${first.code}`}, follow-up ${second.summary.status ?? `exit ${second.code}`}`);
  } finally {
    await valkey.close();
    await counter.close();
  }
}

/** A TCP-level fault between the detector and SQS (what the HTTP proxy cannot do). */
async function sqsTcpFault(context: ScenarioContext, name: string, fault: TcpFault, afterBytes: number, bound: number): Promise<ScenarioResult> {
  const world = new World(context.services, name, 5000);
  await world.prepare();
  const target = new URL(context.services.awsEndpoint);
  const proxy = await FaultyTcpProxy.start({ host: target.hostname, port: Number(target.port) });
  proxy.onResponseBytes = (total) => {
    if (total >= afterBytes) proxy.set(fault);
  };
  try {
    const first = await detect(world, {}, { sqsEndpoint: `http://127.0.0.1:${proxy.port}` });
    proxy.onResponseBytes = undefined;
    proxy.set({ kind: 'pass' });
    proxy.reset();
    const second = await detect(world);
    return await world.measure(name, bound, `faulty run ${first.summary.status ?? `exit ${first.code}`}, follow-up ${second.summary.status ?? `exit ${second.code}`}`);
  } finally {
    await proxy.close();
  }
}

export const detectionScenarios: Scenario[] = [
  { name: 'valkey-reset', run: (c) => valkeyFault(c, 'valkey-reset', (proxy) => proxy.reset(), 40) },
  {
    name: 'valkey-latency-2s',
    run: (c) =>
      valkeyFault(
        c,
        'valkey-latency-2s',
        (proxy) => {
          proxy.set({ kind: 'latency', ms: 2000 });
          setTimeout(() => proxy.set({ kind: 'pass' }), 6000).unref();
        },
        40,
      ),
  },
  { name: 'valkey-blackhole', run: (c) => valkeyFault(c, 'valkey-blackhole', (proxy) => proxy.set({ kind: 'blackhole' }), 40) },
  { name: 'sqs-5xx-burst', run: (c) => sqsFault(c, 'sqs-5xx-burst', { kind: 'status', status: 500, count: 12 }, 30, 0) },
  { name: 'sqs-throttling', run: (c) => sqsFault(c, 'sqs-throttling', { kind: 'throttle', count: 20 }, 30, 0) },
  { name: 'sqs-partial-sender-fault-false', run: (c) => sqsFault(c, 'sqs-partial-sender-fault-false', { kind: 'partial', senderFault: false, fraction: 0.3, count: 40 }, 20, 0) },
  { name: 'sqs-partial-sender-fault-true', run: (c) => sqsFault(c, 'sqs-partial-sender-fault-true', { kind: 'partial', senderFault: true, fraction: 0.3, count: 40 }, 20, 0) },
  { name: 'sqs-blackhole', run: (c) => sqsFault(c, 'sqs-blackhole', { kind: 'blackhole' }, 50, 0) },
  // Requests reach SQS but answers are lost: each retry of a batch the server already took is a
  // duplicate, so the bound is one batch per request in flight, per attempt.
  { name: 'sqs-lost-responses', run: (c) => sqsTcpFault(c, 'sqs-lost-responses', { kind: 'drop-responses' }, 20_000, CONCURRENCY * BATCH * ATTEMPTS) },
  { name: 'sqs-bandwidth-8kBps', run: (c) => sqsTcpFault(c, 'sqs-bandwidth-8kBps', { kind: 'bandwidth', bytesPerSecond: 8192 }, 20_000, 0) },
  { name: 'snowflake-drop-mid-stream', run: snowflakeDrop },
  { name: 'kafka-restart-under-lag-gate', run: kafkaRestart },
  { name: 'sigkill-x20-50k', run: sigkillCampaign },
];

/** Candidates from Snowflake through a proxy whose connections are dropped while the result streams. */
async function snowflakeDrop(context: ScenarioContext): Promise<ScenarioResult> {
  const rows = 400_000; // several result chunks, downloaded as the rows are read
  const world = new World(context.services, 'snowflake-drop', rows, 100);
  await world.prepare();
  const schema = await seedSnowflake(context.services.snowflakeUrl, rows);
  const target = new URL(context.services.snowflakeUrl);
  const proxy = await FaultyTcpProxy.start({ host: target.hostname, port: Number(target.port) });
  let dropped = false;
  proxy.onResponseBytes = (total) => {
    if (!dropped && total > 3_000_000) {
      dropped = true;
      proxy.reset();
    }
  };
  const source = (url: string) =>
    `candidates:\n  source: snowflake\n  snowflake:\n    account: test\n    username: tester\n    password: secret\n    database: FFD\n    schema: ${schema}\n    accessUrl: ${url}\n    loginRetries: 0\n    queryTimeoutSeconds: 30\n`;
  try {
    const first = await detect(world, { candidates: source(`http://127.0.0.1:${proxy.port}`), name: 'faulty.yaml' });
    const second = await detect(world, { candidates: source(context.services.snowflakeUrl), name: 'clean.yaml' });
    return await world.measure('snowflake-drop-mid-stream', 0, `dropped: ${dropped}; faulty run ${first.summary.status ?? `exit ${first.code}`}, follow-up ${second.summary.status ?? `exit ${second.code}`}`);
  } finally {
    await proxy.close();
  }
}

async function seedSnowflake(url: string, rows: number): Promise<string> {
  const { default: snowflake } = await import('snowflake-sdk');
  snowflake.configure({ logLevel: 'ERROR' });
  const schema = `FAULTS_${Date.now()}`;
  const connection = snowflake.createConnection({ account: 'test', username: 'seed', password: 'x', database: 'FFD', schema, accessUrl: url, sfRetryMaxLoginRetries: 0 });
  await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
  const run = (sqlText: string) => new Promise<void>((resolve, reject) => connection.execute({ sqlText, complete: (error) => (error ? reject(error) : resolve()) }));
  await run(`CREATE SCHEMA IF NOT EXISTS FFD.${schema}`);
  await run(`CREATE TABLE FFD.${schema}.RECEIPTS (USER_ID_RAW VARCHAR, PURCHASE_DATE DATE, RECEIPT_ID_RAW VARCHAR)`);
  await run(`INSERT INTO FFD.${schema}.RECEIPTS SELECT 'user-' || lpad(CAST(i AS VARCHAR), 8, '0'), CURRENT_DATE(), 'r' || i FROM range(${rows}) t(i)`);
  await new Promise<void>((resolve) => connection.destroy(() => resolve()));
  return schema;
}

/** The lag gate reads the broker during the send; the broker restarts (a fresh cluster) mid-run. */
async function kafkaRestart(context: ScenarioContext): Promise<ScenarioResult> {
  const world = new World(context.services, 'kafka-restart', 5000);
  await world.prepare();
  const topic = `faults-lag-${Date.now()}`;
  const group = `faults-worker-${Date.now()}`;
  await prepareGroup(context.services.kafkaBrokers, topic, group);
  const gate = `safety:\n  consumerLag:\n    enabled: true\n    brokers: ${JSON.stringify(context.services.kafkaBrokers)}\n    groups: [{ group: ${group}, topic: ${topic} }]\n    recheckMs: 100\n    timeoutMs: 2000\n`;
  const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  let restarting: Promise<void> | undefined;
  counter.onSendBatch = (stats) => {
    if (stats.sendBatches === 30) restarting = restartKafka();
  };
  try {
    const first = await detect(world, { extra: gate }, { sqsEndpoint: counter.endpoint });
    await restarting;
    await prepareGroup(context.services.kafkaBrokers, topic, group); // a fresh cluster: the worker's group is back
    const second = await detect(world, { extra: gate });
    return await world.measure('kafka-restart-under-lag-gate', 0, `restarted: ${restarting !== undefined}; faulty run ${first.summary.status ?? `exit ${first.code}`}, follow-up ${second.summary.status ?? `exit ${second.code}`}`);
  } finally {
    await counter.close();
  }
}

/**
 * Stops and starts the broker (a fresh cluster) without blocking this process: the proxies the
 * scenario runs in it must keep answering meanwhile.
 */
async function restartKafka(): Promise<void> {
  const services = path.join(ROOT, 'scripts', 'services.sh');
  for (const action of ['down', 'up']) {
    const child = spawn(services, [action, 'kafka'], { stdio: 'ignore' });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`scripts/services.sh ${action} kafka exited ${code}`);
  }
}

/** A topic the worker's group has consumed to the end. */
async function prepareGroup(brokers: string[], topic: string, group: string): Promise<void> {
  const kafka = new kafkajs.Kafka({ clientId: 'faults', brokers, logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'receipt' }] });
    await producer.disconnect();
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] });
  } finally {
    await admin.disconnect();
  }
}

/** SIGKILL at 20 seeded points of a 50,000-candidate run, each followed by a rerun. */
async function sigkillCampaign(context: ScenarioContext): Promise<ScenarioResult> {
  const random = prng(context.seed);
  const total: ScenarioResult = { name: 'sigkill-x20-50k', expected: 0, enqueued: 0, lost: 0, markedUnsent: 0, duplicates: 0, duplicateBound: CONCURRENCY * BATCH, ok: true, note: '' };
  const points: number[] = [];
  for (let i = 0; i < 20; i++) {
    // 50,000 candidates, one in ten enabled: each kill and rerun takes seconds, twenty fit the budget.
    const world = new World(context.services, `sigkill-${i}`, 50_000, 10);
    await world.prepare();
    const batches = Math.ceil(world.expected.size / BATCH);
    // 0: killed during the scan, before any send; else after that many SendMessageBatch calls.
    const point = Math.floor(random() * (batches + 1));
    points.push(point);
    const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed + i);
    const killAfterMs = Math.floor(random() * 300);
    try {
      await detect(world, { name: 'kill.yaml' }, { sqsEndpoint: counter.endpoint }, (child) => {
        if (point === 0) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        else counter.onSendBatch = (stats) => void (stats.sendBatches === point && child.kill('SIGKILL'));
      });
    } finally {
      await counter.close();
    }
    // The killed run's lock lasts until its TTL (1 s here): a rerun before that is skipped.
    let rerun = await detect(world, { name: 'rerun.yaml' });
    for (let tries = 1; rerun.summary.status === 'skipped' && tries < 40; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      rerun = await detect(world, { name: 'rerun.yaml' });
    }
    const result = await world.measure(`sigkill-${i}`, CONCURRENCY * BATCH, rerun.summary.status ?? '');
    total.expected += result.expected;
    total.enqueued += result.enqueued;
    total.lost += result.lost;
    total.markedUnsent += result.markedUnsent;
    total.duplicates = Math.max(total.duplicates, result.duplicates);
    total.ok &&= result.ok;
  }
  total.note = `kill points (batches sent): ${points.join(', ')}; duplicates: the most in one kill`;
  return total;
}
