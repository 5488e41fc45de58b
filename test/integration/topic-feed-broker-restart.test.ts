import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { daemonsForTests, type DaemonProcess } from '../helpers/daemon.js';
import { PrivateKafka } from '../helpers/private-kafka.js';
import { createQueue, valkeyClient, waitFor } from '../helpers/services.js';
import { DELTA_MAPPING, FeedFixture, QueueCollector, TopicWriter, produceAdds, userIds, type DaemonStatus } from '../helpers/topic-feed.js';

// Issue 15, item 5 (c): the topic feed across a broker restart. On a private broker: restarting
// the shared one (scripts/services.sh down kafka; up kafka, about 7 s) would break every other
// file using Kafka in parallel, and that script formats a fresh cluster at each start, so the
// topic and the group's offsets would be gone — a new cluster rather than a restart. This broker
// keeps its data across the restart, as a real one does. About 30 s for the whole file.

const daemons = daemonsForTests(afterEach);
const valkey = valkeyClient();
let broker: PrivateKafka;
let writer: TopicWriter;

beforeAll(async () => {
  broker = await PrivateKafka.start();
  writer = await new TopicWriter(broker.brokers()).connect();
}, 90_000);

afterAll(async () => {
  await writer?.close();
  await broker?.stop();
  await valkey.quit();
});

const feedOf = async (daemon: DaemonProcess): Promise<DaemonStatus['feeds'][number] | undefined> => (await daemon.get<DaemonStatus>('/status')).feeds[0];

describe('the topic feed across a broker restart', () => {
  it('follows on once the broker is back: users added before the restart and after it all reach SQS, once', async ({ annotate }) => {
    const fixture = new FeedFixture();
    await writer.createTopic(fixture.topic, 3);
    const queue = new QueueCollector(await createQueue());
    const daemon = await fixture.startDaemon({ mapping: DELTA_MAPPING, rules: fixture.writeRules({}), brokers: broker.brokers(), rateLimit: 100 }, queue.queueUrl);
    daemons.push(daemon);
    await waitFor(() => daemon.log.includes('following the flag topic'), 'the feed to join its consumer group');

    const before = userIds('before', 100);
    await produceAdds(writer, fixture.topic, before, 10, 0).done;
    // Restarted while the daemon still sends (100/s): the feed's consumer loses its broker mid-drain.
    await waitFor(async () => (await valkey.scard(fixture.knownKey)) >= 20, 'the first users to be sent');
    const { downMs, upMs } = await broker.restart();
    await annotate(`[topic-feed] private broker restart: down in ${downMs} ms, answering again ${upMs} ms later`);

    const after = userIds('after', 100);
    await produceAdds(writer, fixture.topic, after, 10, 0).done;
    const everyone = [...before, ...after];
    try {
      await waitFor(
        async () => {
          await queue.collect();
          return everyone.every((user) => queue.distinct().has(user)) && (await feedOf(daemon))?.pending === 0;
        },
        'every user in SQS after the restart',
        90_000,
      );
    } catch (error) {
      const missing = everyone.filter((user) => !queue.distinct().has(user));
      const feed = daemon.exitCode === null ? JSON.stringify(await feedOf(daemon).catch((e: unknown) => String(e))) : `daemon exited ${daemon.exitCode}`;
      const logFile = fixture.writeFile('daemon.log', daemon.log);
      const log = daemon.log.trim().split('\n').slice(-15).join('\n');
      throw new Error(`${String(error)}: ${missing.length} of ${everyone.length} users not in SQS (e.g. ${missing.slice(0, 5).join(', ')}); feed ${feed}\ndaemon log: ${logFile}; its last lines:\n${log}`);
    }
    await queue.collect();
    expect(queue.distinct().size).toBe(everyone.length);
    await annotate(`[topic-feed] broker restart: ${queue.users.length} SQS messages for ${everyone.length} users, ${queue.duplicates()} duplicates`);
    expect(queue.duplicates()).toBe(0);
    expect(await valkey.scard(fixture.knownKey)).toBe(everyone.length);
    const feed = await feedOf(daemon);
    expect(feed?.health.state).toBe('live');
    // Messages whose commit the outage cut off are read again (stale then, and harmless).
    expect(feed?.details?.messages.applied).toBeGreaterThanOrEqual(everyone.length);
    expect(feed?.details?.messages.malformed).toEqual({});
    expect(daemon.log).not.toContain('the flag topic feed stopped');
  }, 150_000);
});
