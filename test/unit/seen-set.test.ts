import { describe, expect, it } from 'vitest';
import { SeenSet } from '../../src/pipeline/seen-set.js';

describe('SeenSet', () => {
  it('agrees with a Set on 1,000,000 IDs with repeats, whatever the seeds', () => {
    for (const seeds of [[1, 2], [0x7fffffff, 0], [12345, 67890]] as const) {
      const seen = new SeenSet(seeds[0], seeds[1]);
      const reference = new Set<string>();
      const disagreements: string[] = [];
      for (let i = 0; i < 1_000_000; i++) {
        const id = `user-${(i * 7919) % 600_000}`;
        if (seen.add(id) === reference.has(id)) disagreements.push(id);
        reference.add(id);
      }
      expect(disagreements).toEqual([]);
      expect(seen.size).toBe(reference.size);
    }
  });

  it('holds about 8–22 bytes per ID, far below a Set of strings', () => {
    const seen = new SeenSet();
    for (let i = 0; i < 2_000_000; i++) seen.add(`u${i}`);
    expect(seen.bytes / seen.size).toBeLessThan(22);
  });

  it('tells apart IDs that differ only in case, length or by one character', () => {
    const seen = new SeenSet(3, 4);
    for (const id of ['a', 'A', 'aa', 'ab', 'ba', 'a\u0000', '']) expect(seen.add(id)).toBe(true);
    expect(seen.add('ab')).toBe(false);
  });
});
