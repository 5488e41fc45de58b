import { describe, expect, it } from 'vitest';
import { slotOf } from '../../src/state/valkey/slot.js';
import { queueIdentity } from '../../src/sink/queue-identity.js';

describe('queueIdentity', () => {
  it.each([
    ['https://sqs.us-east-1.amazonaws.com/705747465351/prod-consumer-graph-queue', 'us-east-1'],
    ['https://sqs.eu-west-2.amazonaws.com/705747465351/prod-consumer-graph-queue', 'eu-west-2'],
    ['https://sqs.cn-north-1.amazonaws.com.cn/705747465351/prod-consumer-graph-queue', 'cn-north-1'],
    ['https://sqs.us-gov-west-1.amazonaws.com/705747465351/prod-consumer-graph-queue', 'us-gov-west-1'],
    ['https://vpce-0a1b2c3d-4e5f.sqs.ap-southeast-2.vpce.amazonaws.com/705747465351/prod-consumer-graph-queue', 'ap-southeast-2'],
    ['https://ap-south-1.queue.amazonaws.com/705747465351/prod-consumer-graph-queue', 'ap-south-1'],
    ['https://queue.amazonaws.com/705747465351/prod-consumer-graph-queue', 'us-east-1'],
    ['http://sqs.us-west-2.localhost:4566/705747465351/prod-consumer-graph-queue', 'us-west-2'],
  ])('%s is in %s', (url, region) => {
    expect(queueIdentity(url, 'xx-default-1')).toEqual({ region, account: '705747465351', name: 'prod-consumer-graph-queue' });
  });

  it('takes the configured region when the host names none (a custom endpoint, a local server)', () => {
    expect(queueIdentity('http://127.0.0.1:14566/000000000000/q.fifo', 'eu-central-1')).toEqual({ region: 'eu-central-1', account: '000000000000', name: 'q.fifo' });
    expect(queueIdentity('http://localhost:4566/000000000000/q', null).region).toBe('unknown-region');
  });

  it('one queue behind two hosts is one queue', () => {
    const direct = queueIdentity('https://sqs.us-east-1.amazonaws.com/1/q', null);
    const throughEndpoint = queueIdentity('https://vpce-1.sqs.us-east-1.vpce.amazonaws.com/1/q', null);
    expect(throughEndpoint).toEqual(direct);
  });

  it('refuses a URL that is not a queue', () => {
    expect(() => queueIdentity('https://sqs.us-east-1.amazonaws.com/only-one-part', null)).toThrow(/not a queue URL/);
  });
});

describe('slotOf', () => {
  it.each([
    ['foo', 12182],
    ['bar', 5061],
    ['{user1000}.following', 3443],
    ['{user1000}.followers', 3443],
    ['foo{}{bar}', 8363],
    ['foo{{bar}}zap', 4015],
  ])('%s is in slot %d, as the cluster computes it', (key, slot) => {
    expect(slotOf(key)).toBe(slot);
  });
});
