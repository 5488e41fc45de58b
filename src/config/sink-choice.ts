import { ValidationError } from '../errors.js';
import type { Config } from './schema.js';

export type SinkKind = 'sqs' | 'stdout' | 'dry-run';

/**
 * Which sink a command sends to. With Valkey state (production's known set) and no queue, `auto`
 * is refused: messages would go to stdout while their users are marked in the known set, and one
 * missing SQS_QUEUE_URL would hide those users forever. Choosing stdout explicitly (`--sink
 * stdout`, `sink: stdout`) or `--dry-run` is allowed. The embedded default (file state, no queue)
 * keeps writing to stdout.
 */
export function chooseSink(config: Pick<Config, 'sink' | 'sqs' | 'state'>, dryRun: boolean): SinkKind {
  if (dryRun) return 'dry-run';
  if (config.sink === 'stdout') return 'stdout';
  if (config.sqs.queueUrl) return 'sqs';
  if (config.sink === 'sqs') throw new ValidationError('CONFIG_INVALID', 'configuration', ['sqs.queueUrl: sink "sqs" needs a queue URL (SQS_QUEUE_URL)']);
  if (config.state.valkeyUrl) {
    throw new ValidationError('CONFIG_INVALID', 'configuration', [
      'sqs.queueUrl: not set (SQS_QUEUE_URL unset or empty) while the state is in Valkey: messages would go to stdout and their users would be marked in the known set. ' +
        'Set SQS_QUEUE_URL, or choose stdout explicitly (--sink stdout, or sink: stdout in the config), or use --dry-run.',
    ]);
  }
  return 'stdout';
}
