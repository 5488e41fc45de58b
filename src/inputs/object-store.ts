import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { FfError, errorMessage } from '../errors.js';

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

/**
 * S3 through the AWS SDK, which finds region, credentials and endpoint in its own variables
 * (AWS_REGION, AWS_ENDPOINT_URL_S3 …). Path-style addressing is used with a custom endpoint,
 * where bucket subdomains do not resolve.
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  /** An injected client belongs to the caller, who closes it. */
  private readonly ownsClient: boolean;

  constructor(client?: S3Client) {
    this.ownsClient = client === undefined;
    const customEndpoint = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
    this.client = client ?? new S3Client({ forcePathStyle: customEndpoint });
  }

  async open(location: S3Location): Promise<AsyncIterable<Buffer>> {
    const uri = formatS3Uri(location);
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
      if (!response.Body) throw new FfError('INPUT_UNREADABLE', `${uri}: empty response body`);
      return response.Body as Readable;
    } catch (error) {
      throw toInputError(uri, error);
    }
  }

  async etag(location: S3Location): Promise<string> {
    const uri = formatS3Uri(location);
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }));
      return response.ETag ?? '';
    } catch (error) {
      throw toInputError(uri, error);
    }
  }

  destroy(): void {
    if (this.ownsClient) this.client.destroy();
  }
}

function toInputError(uri: string, error: unknown): FfError {
  if (error instanceof FfError) return error;
  if (error instanceof S3ServiceException) {
    // HeadObject answers without a body, so its errors arrive as NotFound / Forbidden.
    const reasons: Record<string, string> = {
      NoSuchBucket: 'bucket does not exist',
      NoSuchKey: 'object does not exist',
      NotFound: 'bucket or object does not exist',
      AccessDenied: 'access denied',
      Forbidden: 'access denied',
    };
    const reason = reasons[error.name] ?? `${error.name}: ${error.message}`;
    return new FfError('INPUT_UNREADABLE', `cannot read ${uri}: ${reason}`, {
      cause: error,
      retryable: error.$retryable !== undefined,
    });
  }
  return new FfError('INPUT_UNREADABLE', `cannot read ${uri}: ${errorMessage(error)}`, { cause: error, retryable: true });
}
