import { randomUUID } from 'node:crypto';

/** What the worker's UserLoadEvent needs besides the user (design.md section 6). */
export interface MessageSettings {
  reason: string;
  lookbackDays: number;
  priority: string;
  requestIdPrefix: string;
}

export interface OutgoingMessage {
  userId: string;
  /** Generated once per user per run and reused on every retry of that user's send. */
  requestId: string;
  body: string;
}

/**
 * The SQS body, byte for byte the worker's UserLoadEvent: exactly these keys, in this order,
 * `lookback_days` an integer and `requested_at` RFC 3339 UTC without fractions (Go's time.RFC3339).
 */
export function buildUserLoadMessage(userId: string, settings: MessageSettings, requestedAt: string = formatRequestedAt(new Date())): OutgoingMessage {
  const requestId = `${settings.requestIdPrefix}-${randomUUID()}`;
  const body = JSON.stringify({
    event_type: 'user_load_request',
    user_id: userId,
    reason: settings.reason,
    requested_at: requestedAt,
    lookback_days: settings.lookbackDays,
    request_id: requestId,
    priority: settings.priority,
  });
  return { userId, requestId, body };
}

/** RFC 3339 in UTC, whole seconds: `2026-11-28T10:11:12Z`. */
export function formatRequestedAt(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
