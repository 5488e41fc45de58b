import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { CONCURRENCY, type Scenario, type ScenarioContext } from './scenarios.js';
import { SqsFaultProxy, type SqsFault } from './sqs-fault-proxy.js';
import { FaultyTcpProxy } from './tcp-proxy.js';
import { prng, runCli, World, type CliRun, type ScenarioResult } from './world.js';

// The flag-topic feed's share of the campaign (issue 15): the World's enabled users are published
// as explicit adds to a fresh topic (among other flags' messages and some malformed ones), and a
// real `ff-detector watch kafka --until-end` applies them into Valkey and drains them to SQS
// through a fault; a second watch with the fault gone finishes what the first left.
//
// The rules file is rewritten without explicit users: a user reaches the queue only because the
// feed added them. It excludes a few users the feed also adds (they must not be sent), so every
// scenario also checks that exactly the expected users were enqueued.

const FLAG = 'consumer_graph_ingestion';
const BATCH = 10;
const ATTEMPTS = 3;
/** Candidates per world: 2,000 enabled (200 of them loaded already), 1,800 expected. */
const COUNT = 4000;
/**
 * A watch that has not exited by then is stopped (SIGTERM, then SIGKILL 5 s later) and counted
 * as failed: a faulty run (a Valkey command may wait out its 10 s timeout), a follow-up with the
 * fault gone, and a rerun after a SIGKILL, which first waits ~30 s (the session timeout, until
 * the broker drops the dead consumer from the group and lets the new one in).
 */
const WATCH_LIMIT_MS = 30_000;
const FOLLOW_UP_LIMIT_MS = 12_000;
const RERUN_LIMIT_MS = 40_000;
/** Longer than a Valkey command's 10 s timeout, so the final drain of feed-valkey-reset fails. */
const END_OUTAGE_MS = 13_000;

const sending = (rateLimit: number): string =>
  [`sqs:\n  concurrency: ${CONCURRENCY}\n  maxAttempts: ${ATTEMPTS}\n  requestTimeoutMs: 1500\n  retryBaseMs: 20\n  retryMaxMs: 200\n  maxBacklog: 0`, `enqueue:\n  rateLimit: ${rateLimit}\n  budget: 0`].join('\n');

/** The summary line `watch kafka` prints last. */
interface WatchSummary {
  type?: string;
  state?: string;
  error?: string | null;
  changes?: number;
  sent?: number;
  pendingLeft?: number | null;
  messages?: { read?: number; applied?: number; unrelated?: number; invalidUserIds?: number; malformed?: Record<string, number> } | null;
}

interface WatchRun extends CliRun {
  timedOut: boolean;
  limitMs: number;
  ms: number;
}

/** One scenario's topic and group, on top of its World. */
class FeedWorld {
  readonly world: World;
  readonly topic: string;
  readonly group: string;
  /** Users the feed adds that the rules file excludes: never to be sent. */
  readonly excluded: string[];
  /** The flag's messages the feed turns into a change (`watch` prints a change line for each). */
  changeMessages = 0;

  constructor(
    readonly context: ScenarioContext,
    readonly name: string,
  ) {
    this.world = new World(context.services, name, COUNT);
    const stamp = Date.now();
    this.topic = `faults-feed-${name}-${stamp}`;
    this.group = `faults-feed-${name}-${stamp}`;
    // Odd candidates are never enabled: a few of them added by the feed but excluded by the rules.
    this.excluded = this.world.candidates.filter((_, i) => i % 2 === 1).slice(0, 20);
    const excludedFile = path.join(this.world.dir, 'excluded.txt');
    writeFileSync(excludedFile, `${this.excluded.join('\n')}\n`);
    writeFileSync(this.world.rulesFile, `flag: ${FLAG}\nenabled: true\nexcludedUsers: ${excludedFile}\n`);
  }

  async prepare(): Promise<void> {
    await this.world.prepare();
    await this.publish();
  }

  /** The config of a watch: fast sending (`rateLimit`/s), the topic feed on (not shadow), the world's state. */
  config(rateLimit = 5000, name = 'feed.yaml'): string {
    const brokers = JSON.stringify(this.context.services.kafkaBrokers);
    const mapping = `{ kind: delta, flagNamePath: '$.flag', usersPath: '$.user', usersSeparator: ',', operationPath: '$.op', addValues: [add], removeValues: [remove], filters: [{ path: '$.flag', equals: ${FLAG} }] }`;
    // A killed watch's leader lease lapses in 1 s (the rerun takes it over).
    const feed = `daemon:\n  leaderTtlMs: 1000\nkafka:\n  brokers: ${brokers}\nstrategies:\n  kafkaTopic:\n    enabled: true\n    topic: ${this.topic}\n    groupId: ${this.group}\n    shadow: false\n    mapping: ${mapping}\n`;
    return this.world.config({ name, extra: `${sending(rateLimit)}\n${feed}` });
  }

  env(through: { valkeyUrl?: string; sqsEndpoint?: string } = {}): Record<string, string> {
    return { ...this.world.env(through), KAFKA_BROKERS: this.context.services.kafkaBrokers.join(',') };
  }

  /**
   * `watch kafka --until-end`; `whileRunning` may act on the process. One that has not exited
   * within `limitMs` is stopped: `timedOut`.
   */
  async watch(config: string, through: { valkeyUrl?: string; sqsEndpoint?: string } = {}, whileRunning?: (child: ChildProcess) => void, limitMs = WATCH_LIMIT_MS): Promise<WatchRun> {
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const started = Date.now();
    const run = await runCli(['watch', 'kafka', '--until-end', '--config', config], this.env(through), (child) => {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }, limitMs);
      whileRunning?.(child);
    });
    clearTimeout(timer);
    return { ...run, timedOut, limitMs, ms: Date.now() - started };
  }

  /** Measured as every scenario is, and: nobody sent who was not expected (the excluded, the noise). */
  async measure(name: string, bound: number, note: string, extraOk = true): Promise<ScenarioResult> {
    const result = await this.world.measure(name, bound, note);
    const unexpected = result.enqueued - (result.expected - result.lost);
    if (unexpected !== 0) result.note += `; ${unexpected} users enqueued who were not expected (excluded or another flag's)`;
    result.ok &&= unexpected === 0 && extraOk;
    return result;
  }

  /**
   * A fresh topic of 3 partitions: the flag's messages keyed by the flag (one partition, in
   * order, as a flag system keys its changes); other flags' keyed by theirs. Every enabled user
   * is added once or twice, 1 to 40 users a message; among them other flags' adds (one whose name
   * only starts like the flag's), a few excluded users added, removes of users never enabled,
   * malformed messages and IDs that are not user IDs.
   */
  private async publish(): Promise<void> {
    const random = prng(this.context.seed ^ hash(this.name));
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const enabled = this.world.candidates.filter((_, i) => i % 2 === 0);
    const never = this.world.candidates.filter((_, i) => i % 2 === 1).slice(100);
    const messages: kafkajs.Message[] = [];
    const flagMessage = (value: string | Buffer): void => void messages.push({ key: FLAG, value });
    const change = (op: 'add' | 'remove', users: readonly string[]): void => {
      flagMessage(JSON.stringify({ flag: FLAG, op, user: users.join(','), actor: 'faults' }));
      this.changeMessages += 1;
    };
    const add = (users: readonly string[]): void => change('add', users);
    const noise = (): void => {
      const kind = random();
      const other = pick(['checkout_v2', 'dark_mode', 'receipt_ocr', `${FLAG}_v2`]);
      if (kind < 0.7) messages.push({ key: other, value: JSON.stringify({ flag: other, op: 'add', user: pick(never) }) });
      else if (kind < 0.8) flagMessage(`{"flag":"${FLAG}","op":"add","user":`); // truncated JSON
      else if (kind < 0.85) flagMessage(Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from(`\u0002${FLAG}\u0010${pick(enabled)}`)])); // a schema-registry frame
      else if (kind < 0.9) flagMessage(`${FLAG} was changed by faults`); // text
      else if (kind < 0.95) add(['not a user id!', '']); // no valid ID at all: dropped, counted
      else change('remove', [pick(never)]); // never enabled
    };
    let i = 0;
    while (i < enabled.length) {
      const size = random() < 0.5 ? 1 : 1 + Math.floor(random() * 40);
      const users = enabled.slice(i, i + size);
      i += size;
      // Now and then an ID that is not a user ID rides along (dropped, the rest applies), or an
      // earlier user is added again (already explicit: nothing pending).
      if (random() < 0.05) users.push('bad id');
      if (random() < 0.05 && i > 50) users.push(pick(enabled.slice(0, i - size)));
      add(users);
      if (random() < 0.3) noise();
      if (random() < 0.02) add([pick(this.excluded)]);
    }
    for (const user of this.excluded) add([user]);

    const kafka = new kafkajs.Kafka({ clientId: 'faults-feed', brokers: this.context.services.kafkaBrokers, logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: 3 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (let at = 0; at < messages.length; at += 500) await producer.send({ topic: this.topic, messages: messages.slice(at, at + 500) });
    } finally {
      await producer.disconnect();
    }
  }
}

function hash(text: string): number {
  let h = 0;
  for (const char of text) h = (Math.imul(h, 31) + char.charCodeAt(0)) >>> 0;
  return h;
}

function outcome(run: WatchRun): string {
  const took = `in ${(run.ms / 1000).toFixed(1)} s`;
  if (run.timedOut) return `did not exit within ${run.limitMs / 1000} s`;
  if (run.signal) return `${run.signal} ${took}`;
  const summary = run.summary as WatchSummary;
  const error = /ff-detector: error: (.*)/.exec(run.stderr)?.[1]?.slice(0, 100);
  if (summary.type !== 'summary') return `exit ${run.code} ${took} without a summary line${error ? ` (${error})` : ''}`;
  const unsettled = run.stderr.split('\n').filter((line) => line.includes('users stay pending') || line.includes('feed drain or trigger failed')).length;
  const retried = run.stderr.split('\n').filter((line) => line.includes('cannot apply a change')).length;
  const { malformed = {}, invalidUserIds = 0 } = summary.messages ?? {};
  const skipped = Object.values(malformed).reduce((a, b) => a + b, 0);
  const failure = summary.error ? `, ${summary.error.slice(0, 80)}` : '';
  return `exit ${run.code} ${took} (${summary.state ?? '?'}, sent ${summary.sent ?? '?'}, pending left ${summary.pendingLeft ?? '?'}, ${unsettled} passes failed, ${retried} applies retried, ${skipped} malformed and ${invalidUserIds} invalid IDs skipped${failure})`;
}

/** What a watch that finished shows: exit 0 and its summary line, nobody left pending. */
function finished(run: WatchRun): boolean {
  const summary = run.summary as WatchSummary;
  return !run.timedOut && run.code === 0 && summary.type === 'summary' && summary.pendingLeft === 0;
}

/**
 * Valkey behind a TCP proxy, three faults: every connection reset after a seeded number of
 * SendMessageBatch calls (the client resends what was in flight once reconnected: nothing should
 * fail); a 3 s outage (silent, connections reset: reconnects hang until the connect timeout and
 * the commands in flight fail) a little later, while the topic is still being applied (the
 * partition waits and retries; the pass in flight fails, its users stay pending); and an outage
 * of END_OUTAGE_MS from the moment the last change is applied, so the final drain meets it (a
 * Valkey command gives up after 10 s): the watch exits non-zero with users pending, and a second
 * watch without the proxy must finish them. Sending at 400/s, so the drain lags the topic and
 * users are still pending at its end. The outage ends when the watch exits, or after
 * END_OUTAGE_MS (a watch may only exit once Valkey answers again: closing waits for its QUIT).
 *
 * Bound: a fault fails at most the pass in flight, whose users the queue accepted but that could
 * not be marked are sent again — one batch per send in flight, CONCURRENCY × 10 per fault, 3
 * faults. A failed pass is not resent whole: its next try skips every user it did mark.
 */
async function feedValkeyFault(context: ScenarioContext): Promise<ScenarioResult> {
  const name = 'feed-valkey-reset';
  const feed = new FeedWorld(context, name);
  await feed.prepare();
  const random = prng(context.seed + 15);
  const resetAt = 5 + Math.floor(random() * 20);
  const outageAt = resetAt + 10 + Math.floor(random() * 30);
  const target = new URL(context.services.valkeyUrl);
  const valkey = await FaultyTcpProxy.start({ host: target.hostname, port: Number(target.port) });
  const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  const injected: string[] = [];
  const restore = (): void => {
    valkey.set({ kind: 'pass' });
    valkey.reset(); // the bytes dropped meanwhile would desynchronise a connection kept open
  };
  let restoring: NodeJS.Timeout | undefined;
  const outage = (ms: number): void => {
    valkey.set({ kind: 'blackhole' });
    valkey.reset();
    clearTimeout(restoring);
    restoring = setTimeout(restore, ms);
  };
  // >=, once each: with sends in flight the count may have moved past a point when it is told.
  counter.onSendBatch = (stats) => {
    if (injected.length === 0 && stats.sendBatches >= resetAt) {
      injected.push(`reset at batch ${stats.sendBatches}`);
      valkey.reset();
    } else if (injected.length === 1 && stats.sendBatches >= outageAt) {
      injected.push(`3 s outage at batch ${stats.sendBatches}`);
      outage(3000);
    }
  };
  try {
    const config = feed.config(400);
    const first = await feed.watch(config, { valkeyUrl: `redis://127.0.0.1:${valkey.port}`, sqsEndpoint: counter.endpoint }, (child) => {
      let changes = 0;
      child.stdout?.on('data', (chunk: Buffer) => {
        changes += countChanges(chunk);
        if (changes >= feed.changeMessages && injected.length === 2) {
          injected.push(`${END_OUTAGE_MS / 1000} s outage at the end of the topic (batch ${counter.stats.sendBatches})`);
          outage(END_OUTAGE_MS);
        }
      });
    });
    counter.onSendBatch = undefined;
    clearTimeout(restoring);
    restore();
    let note = `${injected.join(', ')}; watch ${outcome(first)}`;
    let complete = finished(first);
    if (!complete) {
      const second = await feed.watch(config, {}, undefined, FOLLOW_UP_LIMIT_MS);
      note += `; follow-up ${outcome(second)}`;
      complete = finished(second);
    }
    return await feed.measure(name, 3 * CONCURRENCY * BATCH, note, complete);
  } finally {
    clearTimeout(restoring);
    await valkey.close();
    await counter.close();
  }
}

/** Change lines in a chunk of `watch` output (NDJSON: one line per change applied). */
function countChanges(chunk: Buffer): number {
  return chunk.toString().split('\n').filter((line) => line.startsWith('{"type":"change"')).length;
}

/** SQS answers 500 to a burst of requests during the drain: the SDK retries, a failed pass stays pending. */
async function feedSqsFault(context: ScenarioContext): Promise<ScenarioResult> {
  const name = 'feed-sqs-5xx';
  const feed = new FeedWorld(context, name);
  await feed.prepare();
  const fault: SqsFault = { kind: 'status', status: 500, count: 12 };
  const afterBatches = 20;
  const proxy = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  let set = false;
  proxy.onSendBatch = (stats) => {
    if (stats.sendBatches >= afterBatches && !set) {
      set = true;
      proxy.set(fault);
    }
  };
  try {
    const config = feed.config();
    const first = await feed.watch(config, { sqsEndpoint: proxy.endpoint });
    let note = `12 requests answered 500 after batch ${afterBatches} (faulted ${proxy.stats.faulted}); watch ${outcome(first)}`;
    let complete = finished(first);
    if (!complete) {
      const second = await feed.watch(config, {}, undefined, FOLLOW_UP_LIMIT_MS);
      note += `, follow-up ${outcome(second)}`;
      complete = finished(second);
    }
    // A 500 never reached the queue: nothing it answered can come back as a duplicate.
    return await feed.measure(name, 0, note, complete && proxy.stats.faulted > 0);
  } finally {
    await proxy.close();
  }
}

/**
 * SIGKILL twice, in two worlds side by side (each rerun waits ~30 s for the killed consumer's
 * session to expire before the group lets it in; side by side the waits overlap): one watch
 * killed at a seeded point of the consumption (after that many changes applied, while its drain
 * runs alongside), one in the drain that follows the topic's end (a seeded number of
 * SendMessageBatch calls after its last change; sending at 400/s, so the drain lags the topic).
 * Each is rerun to the end. A kill leaves at most the batches in flight accepted and unmarked:
 * CONCURRENCY × 10 duplicates per kill.
 */
async function feedSigkill(context: ScenarioContext): Promise<ScenarioResult> {
  const random = prng(context.seed + 16);
  const [consumption, drain] = await Promise.all([killAndRerun(context, 'feed-sigkill-consume', random(), 'consumption'), killAndRerun(context, 'feed-sigkill-drain', random(), 'drain')]);
  return {
    name: 'feed-sigkill',
    expected: drain.expected + consumption.expected,
    enqueued: drain.enqueued + consumption.enqueued,
    lost: drain.lost + consumption.lost,
    markedUnsent: drain.markedUnsent + consumption.markedUnsent,
    duplicates: Math.max(drain.duplicates, consumption.duplicates),
    duplicateBound: CONCURRENCY * BATCH,
    ok: drain.ok && consumption.ok,
    note: `mid-consumption: ${consumption.note} | mid-drain: ${drain.note}; duplicates: the most after one kill`,
  };
}

/** `fraction` places the kill: among the flag's changes, or among the first 15 batches after the last one. */
async function killAndRerun(context: ScenarioContext, name: string, fraction: number, phase: 'consumption' | 'drain'): Promise<ScenarioResult> {
  const feed = new FeedWorld(context, name);
  await feed.prepare();
  const changePoint = 1 + Math.floor(fraction * (feed.changeMessages - 1));
  const batchesAfterEnd = 1 + Math.floor(fraction * 15);
  const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  let killedAt: string | undefined;
  try {
    const config = feed.config(phase === 'drain' ? 400 : 5000);
    const first = await feed.watch(config, { sqsEndpoint: counter.endpoint }, (child) => {
      let changes = 0;
      let endAt: number | undefined;
      const kill = (): void => {
        if (killedAt !== undefined) return;
        killedAt = `${changes} of ${feed.changeMessages} changes applied, ${counter.stats.sendBatches} batches sent${endAt === undefined ? '' : ` (${endAt} at the topic's end)`}`;
        child.kill('SIGKILL');
      };
      child.stdout?.on('data', (chunk: Buffer) => {
        changes += countChanges(chunk);
        if (phase === 'consumption' && changes >= changePoint) kill();
        if (phase === 'drain' && changes >= feed.changeMessages) endAt ??= counter.stats.sendBatches;
      });
      counter.onSendBatch = (stats) => void (endAt !== undefined && stats.sendBatches >= endAt + batchesAfterEnd && kill());
    });
    const note = killedAt ? `killed after ${killedAt}` : `not killed: ${outcome(first)}`;
    const rerun = await feed.watch(config, {}, undefined, RERUN_LIMIT_MS);
    return await feed.measure(name, CONCURRENCY * BATCH, `${note}; rerun ${outcome(rerun)}`, killedAt !== undefined && finished(rerun));
  } finally {
    await counter.close();
  }
}

export const feedScenarios: Scenario[] = [
  { name: 'feed-valkey-reset', run: feedValkeyFault },
  { name: 'feed-sqs-5xx', run: feedSqsFault },
  { name: 'feed-sigkill', run: feedSigkill },
];
