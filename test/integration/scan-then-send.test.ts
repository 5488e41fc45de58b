import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { PollingFixture } from '../helpers/polling.js';
import { createQueue, drainQueue, sqsClient, valkeyClient } from '../helpers/services.js';
import { tempDir } from '../helpers/files.js';
import { seedReceipts, snowflakeUrl } from '../helpers/snowflake.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

// Issue 11, item 4: a run reads its Snowflake candidates to the end and closes the result before it
// sends, so a send that takes minutes cannot leave the result stream idle until a server timeout
// cuts it. The test cuts every connection to Snowflake as the first message is sent — what the
// server's idle timeout does during a long send — and the run must not notice.

const ROWS = 400_000;

describe('a polling run over Snowflake', () => {
  const valkey = valkeyClient();
  afterAll(() => valkey.quit());

  it('has read every row before its first send; Snowflake cut during the send loses nothing', async () => {
    const schema = await seedReceipts([`INSERT INTO {schema}.RECEIPTS SELECT 'user-' || i, CURRENT_DATE(), 'r' || i FROM range(${ROWS}) t(i)`]);
    // Enabled users spread over the whole result, so some are found late in the stream.
    const enabled = Array.from({ length: 300 }, (_, i) => `user-${i * 1333}`);
    const proxy = await TcpProxy.start(snowflakeUrl());
    const sqs = sqsClient();
    let batchesSent = 0;
    sqs.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'SendMessageBatchCommand' && batchesSent++ === 0) proxy.cut();
        return next(args);
      },
      { step: 'initialize', name: 'cutSnowflakeAtFirstSend' },
    );
    const spillDir = tempDir();
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    try {
      const summary = await fixture.run({
        candidates: 'unused',
        rules: fixture.writeRules(enabled),
        queueUrl,
        sqs,
        rateLimit: 200, // 300 users: 1.5 s of sending after the scan
        candidatesConfig: {
          source: 'snowflake',
          snowflake: { account: 'test', username: 'tester', password: 'secret', database: 'FFD', schema, accessUrl: proxy.url(snowflakeUrl()), loginRetries: 0 },
        },
        // A memory cap below the users to send: the rest wait in a spill file, removed at the end.
        enqueueConfig: { maxPendingInMemory: 100, spillDir },
      });
      expect(summary).toMatchObject({ status: 'ok', candidates: ROWS, enabled: 300, enqueued: 300, failed: 0 });
      expect(batchesSent).toBeGreaterThanOrEqual(30);
      const messages = await drainQueue(queueUrl);
      expect(new Set(messages.map((m) => (JSON.parse(m.Body as string) as { user_id: string }).user_id))).toEqual(new Set(enabled));
      expect((await valkey.smembers(fixture.knownKey)).sort()).toEqual([...enabled].sort());
      expect(readdirSync(spillDir)).toEqual([]);
    } finally {
      await proxy.close();
      sqs.destroy();
    }
  });
});
