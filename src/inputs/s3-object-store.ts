import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { FfError, errorMessage } from '../errors.js';
import { formatS3Uri, type ObjectInfo, type ObjectStore, type S3Location } from './object-store.js';

/**
 * S3 through the AWS SDK, which finds region and credentials in its own variables (AWS_REGION,
 * the default chain); a custom endpoint comes from the config (s3.endpoint) and is addressed
 * path-style, since bucket subdomains do not resolve there.
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  /** An injected client belongs to the caller, who closes it. */
  private readonly ownsClient: boolean;

  /** `endpoint`: s3.endpoint, addressed path-style (local servers have no per-bucket host names). */
  constructor(client?: S3Client, endpoint: string | null = null) {
    this.ownsClient = client === undefined;
    this.client = client ?? new S3Client(endpoint ? { endpoint, forcePathStyle: true } : {});
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

  async list(bucket: string, prefix: string, max: number): Promise<ObjectInfo[]> {
    const objects: ObjectInfo[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: Math.min(1000, max - objects.length) }));
        for (const item of page.Contents ?? []) objects.push({ key: item.Key ?? '', size: item.Size ?? 0, lastModified: item.LastModified ?? null, ...(item.ETag ? { etag: item.ETag } : {}) });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token && objects.length < max);
    } catch (error) {
      throw toInputError(`s3://${bucket}/${prefix}`, error);
    }
    return objects;
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
