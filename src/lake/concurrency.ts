/**
 * Runs `task` over `items` with at most `limit` in flight: a commit publishes hundreds of
 * partition files, and each local publish waits on fsyncs (milliseconds each on real disks) that
 * the file system batches when they overlap, while an unbounded fan-out would open as many file
 * handles at once. Rejects with the first error, after the tasks in flight settled.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const index = next++;
      try {
        await task(items[index], index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
