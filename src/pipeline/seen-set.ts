import { randomInt } from 'node:crypto';

const SHARD_BITS = 8;
const SHARDS = 1 << SHARD_BITS;
const INITIAL_SLOTS = 256;
const MAX_LOAD = 0.75;

/**
 * Remembers which IDs a run has already seen, in ≈ 8 bytes per ID instead of a Set of strings
 * (design invariant 4): each ID is reduced to a 63-bit hash kept in open-addressing tables. The
 * table is split into 256 shards that grow one at a time, so growth never doubles the whole
 * footprint at once.
 *
 * Seeds are random per run. Two distinct IDs colliding (about 1 in 10^6 runs at 10M IDs) makes the
 * second look like a duplicate for this run only: it is neither sent nor marked, so the next run,
 * with other seeds, still finds it.
 */
export class SeenSet {
  private readonly shards: Uint32Array[] = [];
  private readonly counts = new Uint32Array(SHARDS);
  private readonly seedA: number;
  private readonly seedB: number;
  size = 0;

  constructor(seedA = randomInt(2 ** 31), seedB = randomInt(2 ** 31)) {
    this.seedA = seedA;
    this.seedB = seedB;
    for (let i = 0; i < SHARDS; i++) this.shards.push(new Uint32Array(INITIAL_SLOTS * 2));
  }

  /** Records `id`; returns false when it was already seen. */
  add(id: string): boolean {
    let a = this.seedA;
    let b = this.seedB ^ id.length;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b + c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    a = mix(a ^ id.length);
    b = (mix(b) | 1) >>> 0; // never 0: a zero slot means empty
    const shardIndex = a >>> (32 - SHARD_BITS);
    if (!this.insert(shardIndex, a, b)) return false;
    this.size++;
    return true;
  }

  /** Bytes held by the tables, for benchmarks and logs. */
  get bytes(): number {
    let total = 0;
    for (const shard of this.shards) total += shard.byteLength;
    return total;
  }

  private insert(shardIndex: number, a: number, b: number): boolean {
    let table = this.shards[shardIndex] as Uint32Array;
    const slots = table.length >>> 1;
    if ((this.counts[shardIndex] as number) + 1 > slots * MAX_LOAD) {
      table = this.grow(shardIndex, slots * 2);
    }
    const mask = (table.length >>> 1) - 1;
    let slot = b & mask;
    for (;;) {
      const storedB = table[slot * 2 + 1] as number;
      if (storedB === 0) {
        table[slot * 2] = a;
        table[slot * 2 + 1] = b;
        this.counts[shardIndex] = (this.counts[shardIndex] as number) + 1;
        return true;
      }
      if (storedB === b && table[slot * 2] === a) return false;
      slot = (slot + 1) & mask;
    }
  }

  private grow(shardIndex: number, slots: number): Uint32Array {
    const old = this.shards[shardIndex] as Uint32Array;
    const table = new Uint32Array(slots * 2);
    const mask = slots - 1;
    for (let i = 0; i < old.length; i += 2) {
      const b = old[i + 1] as number;
      if (b === 0) continue;
      let slot = b & mask;
      while (table[slot * 2 + 1] !== 0) slot = (slot + 1) & mask;
      table[slot * 2] = old[i] as number;
      table[slot * 2 + 1] = b;
    }
    this.shards[shardIndex] = table;
    return table;
  }
}

/** murmur3's 32-bit finalizer: spreads every input bit over the whole word. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
