import { TributaryError, type Clock } from '../../core/index.js';

/**
 * Token bucket: `ratePerSecond` tokens per second, at most `burst` banked. With burst 1 requests
 * are spaced at least 1000/rate ms apart, so no sliding one-second window ever holds more than
 * `ratePerSecond` requests (with burst b, at most rate + b - 1). Waiters are served in order.
 *
 * @example
 * const bucket = new TokenBucket({ ratePerSecond: 4, burst: 1 }, systemClock);
 * await bucket.take(); // resolves when a request may start
 */
export class TokenBucket {
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #clock: Clock;
  /** The instant at which the bucket will be full again, expressed as the next free slot. */
  #tokens: number;
  #lastMs: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: { ratePerSecond: number; burst?: number }, clock: Clock) {
    if (!(options.ratePerSecond > 0)) throw new TributaryError('CONFIG_INVALID', 'ratePerSecond must be > 0');
    this.#intervalMs = 1000 / options.ratePerSecond;
    this.#burst = Math.max(1, Math.floor(options.burst ?? 1));
    this.#clock = clock;
    this.#tokens = this.#burst;
    this.#lastMs = clock.now();
  }

  /**
   * Tells the bucket the request that took the last token is being sent now. Time between the
   * take and the send earns no tokens, so spacing holds at the moment of sending even when the
   * event loop was slow between the two.
   */
  noteSent(): void {
    const now = this.#clock.now();
    if (now > this.#lastMs) this.#lastMs = now;
  }

  /** Waits for one token. */
  take(signal?: AbortSignal): Promise<void> {
    const run = this.#queue.then(async () => {
      for (;;) {
        const now = this.#clock.now();
        this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#lastMs) / this.#intervalMs);
        this.#lastMs = now;
        if (this.#tokens >= 1) {
          this.#tokens -= 1;
          return;
        }
        // Round up so a timer that fires a hair early never lets a request start early.
        await this.#clock.sleep(Math.ceil((1 - this.#tokens) * this.#intervalMs), signal);
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * Parses Retry-After: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns ms from `nowMs`
 * (never negative) or null when absent or unparseable.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/**
 * Exponential backoff with "equal jitter": half of min(max, base·2^attempt) fixed plus a random
 * share of the other half, so retries spread out but never come back immediately.
 */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
