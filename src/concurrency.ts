/**
 * Maps `items` with at most `limit` calls of `work` in flight; results keep the input order.
 * After a call throws, no new call starts; the calls already in flight are waited for (what they
 * did must be accounted for before the caller reports), then the first error is thrown.
 */
export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/** At most `limit` calls of run() at once, across every caller; the rest wait in order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter, so `active` never over-counts.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** What `within` answers when the deadline passed first. */
export const TIMED_OUT = Symbol('timed out');

/**
 * `work`'s result, or TIMED_OUT once `ms` have passed (a rejection still rejects). The timer is
 * cleared as soon as either side settles; `work` itself goes on — the caller decides what a late
 * answer means.
 */
export function within<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
