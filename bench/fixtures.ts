import { once } from 'node:events';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Cluster, Valkey } from 'iovalkey';
import { createRolloutTest } from '../src/flags/bucketing.js';

export const FLAG = 'consumer_graph_ingestion';
export const PERCENTAGE = 10;
export const SEGMENT_SIZE = 10_000;

export const candidateId = (i: number): string => `user-${i}`;

/** The bench's flag rules: a 10,000-user segment (by file reference) and a 10 % flipper rollout. */
export function writeRules(dir: string, candidates: number): string {
  const segment = Array.from({ length: SEGMENT_SIZE }, (_, i) => candidateId((i * 97) % candidates)).join('\n');
  writeFileSync(path.join(dir, 'segment.txt'), `${segment}\n`);
  const rules = path.join(dir, 'rules.yaml');
  writeFileSync(rules, `flag: ${FLAG}\nenabled: true\nsegments:\n  bench: segment.txt\npercentage: ${PERCENTAGE}\nbucketing:\n  algorithm: flipper\n`);
  return rules;
}

export async function writeCandidates(dir: string, count: number): Promise<string> {
  const file = path.join(dir, `candidates-${count}.txt`);
  const out = createWriteStream(file);
  const chunk = 100_000;
  for (let start = 0; start < count; start += chunk) {
    let text = '';
    for (let i = start; i < Math.min(count, start + chunk); i++) text += `${candidateId(i)}\n`;
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return file;
}

/** Marks every other enabled user as known, so half the enabled users still need a send. */
export async function seedKnown(valkey: Valkey | Cluster, key: string, candidates: number): Promise<{ enabled: number; known: number }> {
  const segment = new Set(Array.from({ length: SEGMENT_SIZE }, (_, i) => candidateId((i * 97) % candidates)));
  const inRollout = createRolloutTest(FLAG, PERCENTAGE, { algorithm: 'flipper' });
  await valkey.del(key);
  let enabled = 0;
  let batch: string[] = [];
  for (let i = 0; i < candidates; i++) {
    const id = candidateId(i);
    if (!segment.has(id) && !inRollout(id)) continue;
    if (enabled++ % 2 === 0) batch.push(id);
    if (batch.length === 10_000) {
      await valkey.sadd(key, ...batch);
      batch = [];
    }
  }
  if (batch.length > 0) await valkey.sadd(key, ...batch);
  return { enabled, known: await valkey.scard(key) };
}

export function benchDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'ffd-bench-'));
}
