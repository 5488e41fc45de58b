/**
 * A queue as SQS knows it — region, account, name — whatever host its URL names: a custom
 * endpoint, a VPC endpoint or a local server rewrites the host, not the queue. Every sender of
 * one queue shares one rate limit keyed by this.
 */
export interface QueueIdentity {
  region: string;
  account: string;
  name: string;
}

const REGION = '[a-z]{2}(?:-[a-z]+)+-\\d+';
/** sqs.<region>.amazonaws.com, …sqs.<region>.vpce.amazonaws.com, sqs.<region>.api.aws, sqs.<region>.localhost */
const SQS_HOST = new RegExp(`(?:^|\\.)sqs[.-](${REGION})\\.`);
/** The legacy <region>.queue.amazonaws.com. */
const LEGACY_HOST = new RegExp(`^(${REGION})\\.queue\\.`);

/**
 * The queue a URL names: `https://<host>/<account>/<name>`. The region comes from the host when
 * it names one, else `defaultRegion` (AWS_REGION); the legacy `queue.amazonaws.com` is us-east-1.
 */
export function queueIdentity(queueUrl: string, defaultRegion: string | null): QueueIdentity {
  const url = new URL(queueUrl);
  const [account, name, ...rest] = url.pathname.split('/').filter(Boolean);
  if (!account || !name || rest.length > 0) throw new Error(`${queueUrl} is not a queue URL (https://host/<account>/<queue name>)`);
  const host = url.hostname.toLowerCase();
  const region = SQS_HOST.exec(host)?.[1] ?? LEGACY_HOST.exec(host)?.[1] ?? (host === 'queue.amazonaws.com' ? 'us-east-1' : defaultRegion);
  return { region: region ?? 'unknown-region', account, name };
}

export function formatQueueIdentity(queue: QueueIdentity): string {
  return `${queue.region}:${queue.account}:${queue.name}`;
}
