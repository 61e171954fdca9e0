/**
 * Wake-ups for long polls: a fetch with `waitMs` parks on the keys it cares about (topic/partition,
 * or a group for rebalances) and `notify` wakes it. A waiter that is woken re-reads the log itself,
 * so a spurious wake-up is harmless.
 */
export class Signals {
  readonly #waiters = new Map<string, Set<() => void>>();

  notify(key: string): void {
    const set = this.#waiters.get(key);
    if (set === undefined) return;
    this.#waiters.delete(key);
    for (const wake of set) wake();
  }

  notifyAll(): void {
    for (const key of [...this.#waiters.keys()]) this.notify(key);
  }

  /** Resolves on the first notify of any key, after `ms`, or when `signal` aborts (never rejects). */
  wait(keys: string[], ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', wake);
        for (const key of keys) this.#waiters.get(key)?.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      signal?.addEventListener('abort', wake, { once: true });
      for (const key of keys) {
        let set = this.#waiters.get(key);
        if (set === undefined) this.#waiters.set(key, (set = new Set()));
        set.add(wake);
      }
    });
  }
}

export function partitionKey(topic: string, partition: number): string {
  return `p\u0000${topic}\u0000${partition}`;
}

export function groupKey(group: string): string {
  return `g\u0000${group}`;
}
