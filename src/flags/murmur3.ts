const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3 x86_32 over the UTF-8 bytes of `text` (as flagd's Go core and Unleash's Java/Go
 * SDKs hash). Unleash's Node SDK hashes the low byte of each UTF-16 unit instead; the two agree
 * on ASCII, which the default ID pattern enforces.
 */
export function murmur3x86_32(text: string, seed = 0): number {
  return isAscii(text) ? hashAscii(text, seed) : hashBytes(Buffer.from(text, 'utf8'), seed);
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function hashAscii(text: string, seed: number): number {
  const length = text.length;
  const blocks = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    const k =
      text.charCodeAt(i) |
      (text.charCodeAt(i + 1) << 8) |
      (text.charCodeAt(i + 2) << 16) |
      (text.charCodeAt(i + 3) << 24);
    h = mixBlock(h, k);
  }
  const rest = length & 3;
  if (rest > 0) {
    let tail = 0;
    for (let i = rest - 1; i >= 0; i--) tail = (tail << 8) | text.charCodeAt(blocks + i);
    h ^= scramble(tail);
  }
  return finalize(h, length);
}

function hashBytes(bytes: Uint8Array, seed: number): number {
  const length = bytes.length;
  const blocks = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    const k = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
    h = mixBlock(h, k);
  }
  const rest = length & 3;
  if (rest > 0) {
    let tail = 0;
    for (let i = rest - 1; i >= 0; i--) tail = (tail << 8) | (bytes[blocks + i] as number);
    h ^= scramble(tail);
  }
  return finalize(h, length);
}

function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixBlock(h: number, k: number): number {
  h ^= scramble(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalize(h: number, length: number): number {
  return fmix32(h ^ length);
}

/** murmur3's 32-bit finalizer: spreads every input bit over the whole word (unsigned result). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
