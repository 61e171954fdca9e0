/** Injected time, so engine and connector tests never sleep on real timers. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** A clock that only moves when told to; `sleep` resolves when `advance` passes its deadline. */
export class ManualClock implements Clock {
  #nowMs: number;
  #sleepers: { untilMs: number; resolve: () => void }[] = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#sleepers.push({ untilMs: this.#nowMs + ms, resolve });
      this.#wake();
    });
  }

  advance(ms: number): void {
    this.#nowMs += ms;
    this.#wake();
  }

  /**
   * Deadlines (ms on this clock) of the sleeps not yet woken: a test waits until the code under
   * test sleeps before moving time, or the move lands before the sleep starts and never wakes it.
   */
  get sleepingUntilMs(): number[] {
    return this.#sleepers.map((s) => s.untilMs);
  }

  #wake(): void {
    const due = this.#sleepers.filter((s) => s.untilMs <= this.#nowMs);
    this.#sleepers = this.#sleepers.filter((s) => s.untilMs > this.#nowMs);
    for (const sleeper of due) sleeper.resolve();
  }
}
