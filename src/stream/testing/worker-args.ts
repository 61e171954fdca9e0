/**
 * What the crash-test workers (golden.ts, partitioned-lake.ts) share: their numeric flags, and the
 * `onBatch` that prints `batch <n>` after each batch and, with `--hold-after=N`, prints `held` after
 * batch N and waits there for the parent's SIGKILL (a kill at that exact point instead of a race).
 */

/** `--name=N` among `args` as a whole number, or null when absent. */
export function numberFlag(args: string[], name: string): number | null {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return null;
  const value = Number(arg.slice(name.length + 3));
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, got ${arg}`);
  return value;
}

export function reportBatches(holdAfter: number | null): () => Promise<void> {
  let batches = 0;
  return async () => {
    process.stdout.write(`batch ${++batches}\n`);
    if (batches === holdAfter) {
      process.stdout.write('held\n');
      // Until the parent's SIGKILL: the timer keeps the event loop (and the process) alive.
      await new Promise(() => setInterval(() => undefined, 60_000));
    }
  };
}
