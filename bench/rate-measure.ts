// Measures of a send log, shared by the benchmark and the tests (README "Safety").
/** A send as a rate check sees it: when it started (ms) and how many messages it carried. */
export interface TimedSend {
  at: number;
  count: number;
}

/** The largest number of messages started in any window [t, t + windowMs). */
export function fullestWindow(sends: readonly TimedSend[], windowMs: number): number {
  const sorted = [...sends].sort((a, b) => a.at - b.at);
  let max = 0;
  let sum = 0;
  let tail = 0;
  for (const send of sorted) {
    sum += send.count;
    while ((sorted[tail] as TimedSend).at + windowMs <= send.at) sum -= (sorted[tail++] as TimedSend).count;
    max = Math.max(max, sum);
  }
  return max;
}

/**
 * Messages per second between the first and the last send, the first send excluded (it is the
 * initial burst, sent at once): the rate the limiter held while it was the bottleneck.
 */
export function achievedRate(sends: readonly TimedSend[]): number {
  const sorted = [...sends].sort((a, b) => a.at - b.at);
  const first = sorted[0] as TimedSend;
  const last = sorted.at(-1) as TimedSend;
  const after = sorted.reduce((sum, send) => sum + send.count, 0) - first.count;
  return (after * 1000) / (last.at - first.at);
}

/** The window rule of README "Safety": integer rates per second; below 1/s one per 1/rate s. */
export function windowRule(rate: number): { windowMs: number; cap: number } {
  return rate >= 1 ? { windowMs: 1000, cap: Math.ceil(rate) } : { windowMs: 1000 / rate, cap: 1 };
}
