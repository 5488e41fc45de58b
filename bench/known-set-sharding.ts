import type { Cluster } from 'iovalkey';
import { mapWithConcurrency } from '../src/concurrency.js';
import { fmix32 } from '../src/flags/murmur3.js';

/**
 * Known-set lookups on the cluster, one key against a set split over `shards` hash-tagged keys
 * (spread over the primaries): batches of 1,000 IDs, 8 in flight as in the pipeline. Returns
 * lookups/s for each, to decide whether the known set needs sharding (docs/decisions.md).
 */
export async function benchKnownSetSharding(cluster: Cluster, ids: readonly string[], shards = 12): Promise<{ oneKeyPerS: number; shardedPerS: number }> {
  const shardOf = (id: string): number => {
    let hash = 0;
    for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
    return (fmix32(hash) >>> 0) % shards;
  };
  const oneKey = '{bench-one}:known';
  const shardKey = (shard: number): string => `{bench-shard-${shard}}:known`;
  for (let i = 0; i < ids.length; i += 10_000) {
    const chunk = ids.slice(i, i + 10_000).filter((_, j) => j % 2 === 0);
    await cluster.sadd(oneKey, ...chunk);
    const byShard = new Map<number, string[]>();
    for (const id of chunk) byShard.set(shardOf(id), [...(byShard.get(shardOf(id)) ?? []), id]);
    for (const [shard, members] of byShard) await cluster.sadd(shardKey(shard), ...members);
  }
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += 1000) batches.push(ids.slice(i, i + 1000) as string[]);
  const time = async (lookup: (batch: string[]) => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await mapWithConcurrency(batches, 8, lookup);
    return ids.length / ((performance.now() - started) / 1000);
  };
  const oneKeyPerS = await time((batch) => cluster.smismember(oneKey, ...batch));
  const shardedPerS = await time(async (batch) => {
    const byShard = new Map<number, string[]>();
    for (const id of batch) byShard.set(shardOf(id), [...(byShard.get(shardOf(id)) ?? []), id]);
    await Promise.all([...byShard].map(([shard, members]) => cluster.smismember(shardKey(shard), ...members)));
  });
  await cluster.del(oneKey);
  for (let shard = 0; shard < shards; shard++) await cluster.del(shardKey(shard));
  return { oneKeyPerS, shardedPerS };
}
