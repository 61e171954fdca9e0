/** How one item of a bounded run ended. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs `run` for the indexes 0..count-1 with at most `concurrency` in flight; once a run answers
 * false, no new one starts (those in flight finish).
 */
async function boundedPool(
  count: number,
  concurrency: number,
  run: (index: number) => Promise<boolean>,
): Promise<void> {
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && next < count) {
      if (!(await run(next++))) stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Runs `fn` over every item with at most `concurrency` in flight; each outcome in input order. */
export async function runBounded<I, O>(
  items: readonly I[],
  concurrency: number,
  fn: (item: I, index: number) => Promise<O>,
): Promise<Settled<O>[]> {
  const results = new Array<Settled<O>>(items.length);
  await boundedPool(items.length, concurrency, async (i) => {
    try {
      results[i] = { ok: true, value: await fn(items[i], i) };
    } catch (error) {
      results[i] = { ok: false, error };
    }
    return true;
  });
  return results;
}

/**
 * Runs `task` over `items` with at most `concurrency` in flight, starting none after a failure;
 * rejects with the first error once the tasks in flight settled.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let failure: { error: unknown } | null = null;
  await boundedPool(items.length, concurrency, async (i) => {
    try {
      await task(items[i], i);
      return true;
    } catch (error) {
      failure ??= { error };
      return false;
    }
  });
  if (failure !== null) throw (failure as { error: unknown }).error;
}
