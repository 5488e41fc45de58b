import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, drainQueue, sqsClient, valkeyClient, valkeyUrl, waitFor } from '../helpers/services.js';

// Never flood the worker (issue 11, item 5): above sqs.maxBacklog sending pauses, nothing marked.

describe('the queue backlog gate', () => {
  it('pauses while the queue holds more than sqs.maxBacklog, and resumes once it is worked off', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const sqs = sqsClient();
    for (let batch = 0; batch < 6; batch++) {
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: Array.from({ length: 10 }, (_, i) => ({ Id: String(i), MessageBody: 'earlier work' })) }));
    }
    sqs.destroy();
    const enabled = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    const config = path.join(fixture.dir, 'c.yaml');
    writeFileSync(config, `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"\nsqs:\n  maxBacklog: 50\n  backlogCheckMs: 200\nenqueue:\n  rateLimit: 1000\n`);
    const valkey = valkeyClient();
    const bodies: string[] = [];
    const result = await runCli(['detect', '--config', config, '--candidates', fixture.writeCandidates(enabled), '--flags', fixture.writeRules(enabled)], {
      env: { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl },
      whileRunning: async (_, output) => {
        await waitFor(() => output().includes('sending paused: queue backlog 60 is above sqs.maxBacklog 50'), 'sending to pause');
        expect(await valkey.scard(fixture.knownKey)).toBe(0); // nothing sent, nothing marked
        bodies.push(...(await drainQueue(queueUrl)).map((message) => message.Body as string)); // the worker catches up
      },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('sending resumes');
    expect(result.summary).toMatchObject({ status: 'ok', enqueued: 20 });
    bodies.push(...(await drainQueue(queueUrl)).map((message) => message.Body as string));
    expect(bodies.filter((body) => body === 'earlier work')).toHaveLength(60);
    expect(bodies.filter((body) => body.includes('user_load_request'))).toHaveLength(20);
    expect(await valkey.scard(fixture.knownKey)).toBe(20);
    await valkey.quit();
  });

  it('gives up after safety.maxPauseMinutes when the worker never catches up: a backfill keeps everyone in its resume file', async () => {
    const fixture = new PollingFixture();
    const queueUrl = await createQueue();
    const sqs = sqsClient();
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: Array.from({ length: 10 }, (_, i) => ({ Id: String(i), MessageBody: 'earlier work' })) }));
    sqs.destroy();
    const users = Array.from({ length: 15 }, (_, i) => `user-${i}`);
    const config = path.join(fixture.dir, 'c.yaml');
    writeFileSync(config, 'sqs:\n  maxBacklog: 5\n  backlogCheckMs: 100\nsafety:\n  maxPauseMinutes: 0.01\n');
    const resumeFile = path.join(fixture.dir, 'resume.txt');
    const result = await runCli(['backfill', '--config', config, '--user-file', fixture.writeCandidates(users), '--resume-file', resumeFile], { env: { ...awsEnv(), SQS_QUEUE_URL: queueUrl } });
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ status: 'failed', sent: 0, remaining: 15, resumeFile });
    expect(String(result.summary.error)).toMatch(/^sending gave up after a pause of .* \(safety.maxPauseMinutes\): queue backlog 10 is above sqs.maxBacklog 5/);
    expect(readFileSync(resumeFile, 'utf8').trim().split('\n').sort()).toEqual([...users].sort());
    expect((await drainQueue(queueUrl)).map((message) => message.Body)).toEqual(Array(10).fill('earlier work'));
  });
});
