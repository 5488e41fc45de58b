import { createReadStream } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { FfError, errorMessage } from '../errors.js';
import { parseS3Uri, type ObjectStore } from './object-store.js';

export interface InputDeps {
  /** Needed only for s3:// locations. */
  objectStore?: ObjectStore | undefined;
}

/**
 * Streams the bytes of a local file or an s3:// object, gunzipped when the content starts with the
 * gzip magic bytes (whatever the name says). Every error names the location.
 */
export async function* openInput(location: string, deps: InputDeps = {}): AsyncGenerator<Buffer> {
  try {
    yield* decompressIfGzip(await openRaw(location, deps), location);
  } catch (error) {
    throw toInputError(location, error);
  }
}

async function openRaw(location: string, deps: InputDeps): Promise<AsyncIterable<Buffer>> {
  if (!location.startsWith('s3://')) return createReadStream(location, { highWaterMark: 64 * 1024 });
  if (!deps.objectStore) throw new FfError('INPUT_UNREADABLE', `cannot read ${location}: no S3 client configured`);
  return deps.objectStore.open(parseS3Uri(location));
}

async function* decompressIfGzip(source: AsyncIterable<Buffer>, location: string): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  while (head.length < 2) {
    const next = await iterator.next();
    if (next.done) break;
    head = head.length === 0 ? next.value : Buffer.concat([head, next.value]);
  }
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => iterator };
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    if (head.length > 0) yield head;
    yield* rest;
    return;
  }
  const gunzip = createGunzip();
  pipeline(Readable.from(prepend(head, rest)), gunzip, () => {
    // Errors surface through the iteration of gunzip below.
  });
  try {
    yield* gunzip;
  } catch (error) {
    throw new FfError('INPUT_MALFORMED', `${location}: corrupt or truncated gzip data (${errorMessage(error)})`, {
      cause: error,
    });
  }
}

async function* prepend(first: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* rest;
}

function toInputError(location: string, error: unknown): FfError {
  if (error instanceof FfError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EISDIR: 'is a directory, not a file',
    ENOTDIR: 'a part of the path is not a directory',
  };
  const known = code !== undefined ? reasons[code] : undefined;
  // A missing or forbidden path is a mistake to fix; anything else (EIO, EMFILE) may pass.
  return new FfError('INPUT_UNREADABLE', `cannot read ${location}: ${known ?? errorMessage(error)}`, { cause: error, retryable: known === undefined });
}
