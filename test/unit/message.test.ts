import { describe, expect, it } from 'vitest';
import { buildUserLoadMessage, formatRequestedAt } from '../../src/sink/message.js';

const settings = { reason: 'feature_flag_enabled', lookbackDays: 365, priority: 'low', requestIdPrefix: 'detector' };

describe('UserLoadEvent body', () => {
  it('has exactly the worker contract keys, in order, with typed values', () => {
    const message = buildUserLoadMessage('user-42', settings, formatRequestedAt(new Date('2026-11-28T10:11:12.345Z')));
    const body = JSON.parse(message.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['event_type', 'user_id', 'reason', 'requested_at', 'lookback_days', 'request_id', 'priority']);
    expect(body).toMatchObject({
      event_type: 'user_load_request',
      user_id: 'user-42',
      reason: 'feature_flag_enabled',
      requested_at: '2026-11-28T10:11:12Z',
      lookback_days: 365,
      priority: 'low',
    });
    expect(body.request_id).toBe(message.requestId);
    expect(message.requestId).toMatch(/^detector-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.isInteger(body.lookback_days)).toBe(true);
  });

  it('gives every message its own request ID', () => {
    const ids = new Set(Array.from({ length: 100 }, () => buildUserLoadMessage('u', settings).requestId));
    expect(ids.size).toBe(100);
  });

  it('escapes IDs as JSON', () => {
    const body = JSON.parse(buildUserLoadMessage('a"b\\c', settings).body) as { user_id: string };
    expect(body.user_id).toBe('a"b\\c');
  });
});
