const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}

/**
 * CRC-32 (IEEE 802.3, zlib's) of the UTF-8 bytes of `text`, continuing from `previous` like
 * zlib's crc32(data, value). Computed in JS for ASCII text: on the per-candidate hot path this is
 * several times faster than a call into zlib, which must first copy the string out as UTF-8.
 */
export function crc32(text: string, previous = 0): number {
  let crc = ~previous;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return crc32Bytes(Buffer.from(text, 'utf8'), previous);
    crc = (TABLE[(crc ^ code) & 0xff] as number) ^ (crc >>> 8);
  }
  return ~crc >>> 0;
}

function crc32Bytes(bytes: Uint8Array, previous: number): number {
  let crc = ~previous;
  for (let i = 0; i < bytes.length; i++) crc = (TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}
