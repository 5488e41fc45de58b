import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { PollingFixture } from '../helpers/polling.js';
import { awsEnv, createQueue, drainQueue, valkeyClient, valkeyUrl } from '../helpers/services.js';

// Exclusions fail closed (issue 11, item 1): rules the detector cannot read whole stop the run
// before anyone is sent or marked.

async function detectWith(rules: (dir: string) => string, extraConfig = '') {
  const fixture = new PollingFixture();
  const queueUrl = await createQueue();
  const config = path.join(fixture.dir, 'c.yaml');
  writeFileSync(config, `state:\n  knownSetKey: ${fixture.knownKey}\n  detectorKeyPrefix: "${fixture.prefix}:d:"\nenqueue:\n  rateLimit: 1000\n${extraConfig}`);
  const candidates = fixture.writeCandidates(['vip-1', 'vip-2', 'user-1', 'user-2']);
  const result = await runCli(['detect', '--config', config, '--candidates', candidates, '--flags', rules(fixture.dir)], {
    env: { ...awsEnv(), VALKEY_URL: valkeyUrl(), SQS_QUEUE_URL: queueUrl },
  });
  const valkey = valkeyClient();
  const marked = await valkey.smembers(fixture.knownKey);
  await valkey.quit();
  return { result, sent: (await drainQueue(queueUrl)).length, marked };
}

/** 100 % rollout with the VIPs excluded through a list file written as `content`. */
const excludingVips = (content: Buffer) => (dir: string) => {
  writeFileSync(path.join(dir, 'excluded.txt'), content);
  writeFileSync(path.join(dir, 'rules.yaml'), 'flag: consumer_graph_ingestion\nenabled: true\npercentage: 100\nexcludedUsers: excluded.txt\n');
  return path.join(dir, 'rules.yaml');
};

describe('rules that cannot be read whole stop the run (exit 2): nobody sent, nobody marked', () => {
  it.each([
    ['a UTF-16 exclusion list', Buffer.from('\uFEFFvip-1\nvip-2\n', 'utf16le')],
    ['an exclusion list of invalid lines', Buffer.from('vip 1\nvip 2\n')],
  ])('%s', async (_, content) => {
    const { result, sent, marked } = await detectWith(excludingVips(content));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/excludedUsers: \d+ lines of .*excluded\.txt are not user IDs/);
    expect(sent).toBe(0);
    expect(marked).toEqual([]);
  });

  it('a rules key with a typo (excluded_users)', async () => {
    const { result, sent, marked } = await detectWith((dir) => {
      writeFileSync(path.join(dir, 'rules.yaml'), 'flag: consumer_graph_ingestion\nenabled: true\npercentage: 100\nexcluded_users: [vip-1, vip-2]\n');
      return path.join(dir, 'rules.yaml');
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('excluded_users: unknown key (did you mean excludedUsers?)');
    expect([sent, marked.length]).toEqual([0, 0]);
  });

  it('a missing segment file', async () => {
    const { result, sent } = await detectWith((dir) => {
      writeFileSync(path.join(dir, 'rules.yaml'), 'flag: consumer_graph_ingestion\nenabled: true\nsegments:\n  team: nowhere.txt\n');
      return path.join(dir, 'rules.yaml');
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/segments\.team: cannot read .*nowhere\.txt/);
    expect(sent).toBe(0);
  });

  it('runs when told to skip invalid list lines (flags.allowInvalidListEntries), with a warning', async () => {
    const { result, sent } = await detectWith(excludingVips(Buffer.from('vip-1\nnot an id\n')), 'flags:\n  allowInvalidListEntries: true\n');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('ignored 1 invalid IDs in the excludedUsers list');
    expect(sent).toBe(3); // vip-1 excluded, the others enabled
  });
});

describe('rules too large to parse within the heap are refused (exit 2), and a list file of any size works', () => {
  const users = (n: number) => Array.from({ length: n }, (_, i) => `user-${String(i).padStart(7, '0')}`);

  it('1,000,000 inline users, YAML or JSON: refused with what to do instead, no out-of-memory', async () => {
    for (const [name, text] of [
      ['rules.yaml', `flag: consumer_graph_ingestion\nenabled: true\nusers:\n${users(1_000_000).map((id) => `  - ${id}`).join('\n')}\n`],
      ['rules.json', JSON.stringify({ flag: 'consumer_graph_ingestion', enabled: true, users: users(1_000_000) })],
    ] as const) {
      const { result, sent, marked } = await detectWith((dir) => {
        writeFileSync(path.join(dir, name), text);
        return path.join(dir, name);
      });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`${name} is larger than 8 MiB, the limit as JSON: keep large user lists in a list file (users: users.txt, one ID per line), which is streamed`);
      expect(sent).toBe(0);
      expect(marked).toEqual([]);
    }
  });

  it('a YAML document over 1 MiB is refused; the same users as JSON are read', async () => {
    const many = users(70_000);
    const yaml = await detectWith((dir) => {
      writeFileSync(path.join(dir, 'rules.yaml'), `flag: consumer_graph_ingestion\nenabled: true\nusers:\n${many.map((id) => `  - ${id}`).join('\n')}\n`);
      return path.join(dir, 'rules.yaml');
    });
    expect(yaml.result.code).toBe(2);
    expect(yaml.result.stderr).toContain('is larger than 1 MiB, the limit as YAML');
    const json = await detectWith((dir) => {
      writeFileSync(path.join(dir, 'rules.json'), JSON.stringify({ flag: 'consumer_graph_ingestion', enabled: true, users: [...many, 'vip-1'] }));
      return path.join(dir, 'rules.json');
    });
    expect(json.result.code, json.result.stderr).toBe(0);
    expect(json.marked).toEqual(['vip-1']);
  });

  it('1,000,000 users in a list file work at the default heap', async () => {
    const { result, marked } = await detectWith((dir) => {
      writeFileSync(path.join(dir, 'users.txt'), `${users(1_000_000).join('\n')}\nvip-2\n`);
      writeFileSync(path.join(dir, 'rules.yaml'), 'flag: consumer_graph_ingestion\nenabled: true\nusers: users.txt\n');
      return path.join(dir, 'rules.yaml');
    });
    expect(result.code, result.stderr).toBe(0);
    expect(marked).toEqual(['vip-2']);
  });
});
