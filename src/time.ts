/** Durations written the way people read them: `5 * SECOND`. */
export const MILLISECOND = 1;
export const SECOND = 1000 * MILLISECOND;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** The clock the rate limiter and retries wait on; tests pass a manual one. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** A `now()` reading as milliseconds since the epoch, for logs other processes can compare. */
  epochMs(at: number): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Resolves once `now()` has reached `at`, within a few microseconds rather than the millisecond
   * or two a timer alone overshoots by (the rate limiter's pace depends on it).
   */
  sleepUntil(at: number, signal?: AbortSignal): Promise<void>;
}

/** A timer gets the wait this close to its end; yielding to the event loop covers the rest. */
const TIMER_SLACK_MS = 2;

export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: (at) => performance.timeOrigin + at,
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  async sleepUntil(at, signal) {
    const remaining = at - performance.now();
    if (remaining > TIMER_SLACK_MS) await systemClock.sleep(Math.floor(remaining - TIMER_SLACK_MS), signal);
    while (performance.now() < at) {
      signal?.throwIfAborted();
      await new Promise((resolve) => setImmediate(resolve));
    }
    signal?.throwIfAborted();
  },
};

/** `8m20s`, the seed's progress format. */
export function formatElapsed(ms: number): string {
  const totalSeconds = Math.floor(ms / SECOND);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
