import type { S3Client } from '@aws-sdk/client-s3';
import type { ObjectInfo, ObjectStore, S3Location } from './object-store.js';
import type { S3ObjectStore } from './s3-object-store.js';

/**
 * The runtime's object store: the S3 client (and the AWS SDK's S3 module) is created only when an
 * s3:// location is actually read, so a run on local files never loads it.
 */
export class LazyS3ObjectStore implements ObjectStore {
  private store: S3ObjectStore | undefined;

  constructor(
    private readonly client: S3Client | undefined,
    private readonly endpoint: string | null,
  ) {}

  async open(location: S3Location): Promise<AsyncIterable<Buffer>> {
    return (await this.get()).open(location);
  }

  async etag(location: S3Location): Promise<string> {
    return (await this.get()).etag(location);
  }

  async list(bucket: string, prefix: string, max: number): Promise<ObjectInfo[]> {
    return (await this.get()).list(bucket, prefix, max);
  }

  private async get(): Promise<S3ObjectStore> {
    if (!this.store) {
      const { S3ObjectStore } = await import('./s3-object-store.js');
      this.store ??= new S3ObjectStore(this.client, this.endpoint);
    }
    return this.store;
  }

  destroy(): void {
    this.store?.destroy();
  }
}
