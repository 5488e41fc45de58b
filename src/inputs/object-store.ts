import path from 'node:path';
import { FfError } from '../errors.js';

export interface S3Location {
  bucket: string;
  key: string;
}

/** The object-storage calls ff-detector makes (S3 or compatible). */
export interface ObjectStore {
  /** Streams an object's bytes; errors name the URI. */
  open(location: S3Location): Promise<AsyncIterable<Buffer>>;
  /** The object's ETag, to notice a change without reading it. */
  etag(location: S3Location): Promise<string>;
  /** Objects under a prefix, at most `max`, in key order. */
  list(bucket: string, prefix: string, max: number): Promise<ObjectInfo[]>;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date | null;
  /** As the listing gave it (quotes included); absent where a store does not say. */
  etag?: string;
}

export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new FfError('INPUT_UNREADABLE', `${uri} is not an s3://bucket/key URI`);
  return { bucket: match[1], key: match[2] };
}

export function formatS3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/** `s3://b/dir/rules.yaml` + `team.txt` → `s3://b/dir/team.txt`; absolute URIs stay as they are. */
export function resolveS3Reference(reference: string, base: string): string {
  if (reference.startsWith('s3://')) return reference;
  const { bucket, key } = parseS3Uri(base);
  const folder = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
  return formatS3Uri({ bucket, key: path.posix.normalize(folder + reference).replace(/^\/+/, '') });
}
