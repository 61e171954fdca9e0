import { systemClock, type Clock } from './clock.js';
import { TributaryError } from './errors.js';

/**
 * How a throttle spaces requests:
 * - `token-bucket`: `ratePerSecond` tokens refill continuously, at most `burst` banked. Burst 1
 *   spaces requests 1000/rate ms apart; with burst b a sliding second may hold rate + b − 1.
 * - `sliding-window`: never more than `requestsMax` requests started in any window of `windowMs`
 *   (an API's "N requests per second" taken literally: TMDB's 4/s allows 4 back to back, then
 *   waits until the first of them is a second old). A token bucket cannot give both the burst and
 *   the bound; this mode does.
 */
export type ThrottleOptions =
  | { mode?: 'token-bucket'; ratePerSecond: number; burst?: number }
  | { mode: 'sliding-window'; requestsMax: number; windowMs?: number };

export interface ThrottleDecision {
  allowed: boolean;
  /** Whole requests that could start right now after this one. */
  remaining: number;
  /** When refused: ms until one may start. */
  retryAfterMs: number;
}

function check(options: ThrottleOptions): void {
  const bad = (message: string) => new TributaryError('CONFIG_INVALID', `rate limit: ${message}`);
  if (options.mode === 'sliding-window') {
    if (!Number.isInteger(options.requestsMax) || options.requestsMax < 1)
      throw bad(`requestsMax must be an integer ≥ 1, got ${options.requestsMax}`);
    if (options.windowMs !== undefined && !(options.windowMs > 0))
      throw bad(`windowMs must be > 0, got ${options.windowMs}`);
  } else {
    if (!(options.ratePerSecond > 0)) throw bad(`ratePerSecond must be > 0, got ${options.ratePerSecond}`);
    if (options.burst !== undefined && !(options.burst >= 1))
      throw bad(`burst must be ≥ 1, got ${options.burst}`);
  }
}

/**
 * The platform's one rate limiter. `take()` waits (FIFO) until a request may start; `tryTake()`
 * answers at once (the API's per-key limits); `pause(ms)` holds every start back until a 429's
 * `Retry-After` has passed, for all users of this throttle. Time comes from the injected `Clock`.
 *
 * @example
 * const tmdb = new Throttle({ mode: 'sliding-window', requestsMax: 4, windowMs: 1000 });
 * await tmdb.take(signal);          // at most 4 starts in any 1 s
 * tmdb.noteSent();                  // the request leaves now (after DNS, redirects' checks)
 * if (response.status === 429) tmdb.pause(parseRetryAfter(response.headers.get('retry-after'), Date.now()) ?? 1000);
 */
export class Throttle {
  readonly options: Readonly<ThrottleOptions>;
  readonly #clock: Clock;
  // token bucket
  readonly #intervalMs: number;
  readonly #burst: number;
  #tokens: number;
  #lastMs: number;
  // sliding window: start times of the last `requestsMax` requests, oldest first
  readonly #windowMs: number;
  readonly #requestsMax: number;
  readonly #starts: number[] = [];
  #pausedUntilMs = Number.NEGATIVE_INFINITY;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: ThrottleOptions, clock: Clock = systemClock) {
    check(options);
    this.options = { ...options };
    this.#clock = clock;
    const sliding = options.mode === 'sliding-window';
    this.#intervalMs = sliding ? 0 : 1000 / options.ratePerSecond;
    this.#burst = sliding ? 1 : Math.max(1, Math.floor(options.burst ?? 1));
    this.#tokens = this.#burst;
    this.#lastMs = clock.now();
    this.#windowMs = sliding ? (options.windowMs ?? 1000) : 0;
    this.#requestsMax = sliding ? options.requestsMax : 0;
  }

  get #sliding(): boolean {
    return this.options.mode === 'sliding-window';
  }

  /** ms until a request may start (0 = now); refills the bucket as a side effect. */
  #delayMs(nowMs: number): number {
    const paused = Math.max(0, this.#pausedUntilMs - nowMs);
    if (this.#sliding) {
      const starts = this.#starts;
      const window =
        starts.length < this.#requestsMax
          ? 0
          : starts[starts.length - this.#requestsMax] + this.#windowMs - nowMs;
      return Math.max(paused, window, 0);
    }
    if (nowMs > this.#lastMs) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (nowMs - this.#lastMs) / this.#intervalMs);
      this.#lastMs = nowMs;
    }
    // Round up so a timer that fires a hair early never lets a request start early.
    const bucket = this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) * this.#intervalMs);
    return Math.max(paused, bucket);
  }

  #consume(nowMs: number): void {
    if (this.#sliding) {
      this.#starts.push(nowMs);
      if (this.#starts.length > this.#requestsMax) this.#starts.shift();
    } else {
      this.#tokens -= 1;
    }
  }

  #remaining(nowMs: number): number {
    if (nowMs < this.#pausedUntilMs) return 0;
    if (!this.#sliding) return Math.floor(this.#tokens);
    const inWindow = this.#starts.filter((s) => s > nowMs - this.#windowMs).length;
    return Math.max(0, this.#requestsMax - inWindow);
  }

  /** Waits until one request may start, then counts it. Waiters are served in order. */
  take(signal?: AbortSignal): Promise<void> {
    const run = this.#queue.then(async () => {
      for (;;) {
        signal?.throwIfAborted();
        const nowMs = this.#clock.now();
        const waitMs = this.#delayMs(nowMs);
        if (waitMs <= 0) {
          this.#consume(nowMs);
          return;
        }
        await this.#clock.sleep(waitMs, signal);
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Counts one request if it may start now; otherwise says how long to wait. Never waits. */
  tryTake(): ThrottleDecision {
    const nowMs = this.#clock.now();
    const waitMs = this.#delayMs(nowMs);
    if (waitMs > 0) return { allowed: false, remaining: 0, retryAfterMs: waitMs };
    this.#consume(nowMs);
    return { allowed: true, remaining: this.#remaining(nowMs), retryAfterMs: 0 };
  }

  /**
   * The request that took the last permit is being sent now. Time between the take and the send
   * earns nothing, so the spacing holds at the moment of sending even when DNS or the event loop
   * was slow in between. For callers that take and send one request at a time.
   */
  noteSent(): void {
    const nowMs = this.#clock.now();
    if (this.#sliding) {
      const last = this.#starts.length - 1;
      if (last >= 0 && this.#starts[last] < nowMs) this.#starts[last] = nowMs;
    } else if (nowMs > this.#lastMs) {
      this.#lastMs = nowMs;
    }
  }

  /** No request starts before `ms` from now (a 429's Retry-After); pauses only ever lengthen. */
  pause(ms: number): void {
    this.#pausedUntilMs = Math.max(this.#pausedUntilMs, this.#clock.now() + Math.max(0, ms));
  }

  /** True when the throttle holds no state worth keeping (full bucket, no recent start, no pause). */
  idle(): boolean {
    const nowMs = this.#clock.now();
    if (nowMs < this.#pausedUntilMs) return false;
    if (this.#sliding) return this.#starts.every((s) => s <= nowMs - this.#windowMs);
    return this.#tokens + (nowMs - this.#lastMs) / this.#intervalMs >= this.#burst;
  }
}

function sameOptions(a: ThrottleOptions, b: ThrottleOptions): boolean {
  const norm = (o: ThrottleOptions) =>
    o.mode === 'sliding-window'
      ? `sliding:${o.requestsMax}/${o.windowMs ?? 1000}`
      : `bucket:${o.ratePerSecond}/${o.burst ?? 1}`;
  return norm(a) === norm(b);
}

/**
 * Named rate budgets: sources calling one external API share one throttle (and its 429 pauses),
 * however many pollers a pipeline declares. The first declaration of a name creates it; the same
 * name declared with other limits is refused, so two pipelines cannot silently double a budget.
 *
 * @example
 * const budgets = new RateBudgets();
 * const tmdb = budgets.declare('tmdb', { mode: 'sliding-window', requestsMax: 4 });
 * budgets.get('tmdb') === tmdb; // true
 */
export class RateBudgets {
  readonly #budgets = new Map<string, Throttle>();
  readonly #clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  declare(name: string, options: ThrottleOptions): Throttle {
    const existing = this.#budgets.get(name);
    if (existing) {
      if (!sameOptions(existing.options, options)) {
        throw new TributaryError(
          'CONFIG_INVALID',
          `rate budget ${name} is declared twice with different limits (${JSON.stringify(existing.options)} and ${JSON.stringify(options)})`,
        );
      }
      return existing;
    }
    const throttle = new Throttle(options, this.#clock);
    this.#budgets.set(name, throttle);
    return throttle;
  }

  get(name: string): Throttle {
    const found = this.#budgets.get(name);
    if (!found) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `no rate budget named ${name}; declared: ${[...this.#budgets.keys()].join(', ') || 'none'}`,
      );
    }
    return found;
  }

  names(): string[] {
    return [...this.#budgets.keys()];
  }
}
