import { systemClock, type Clock } from './clock.js';
import { TributaryError } from './errors.js';

/**
 * The one retry policy of the platform: exponential backoff with "equal jitter", `Retry-After`
 * honoured (seconds or HTTP date), every wait capped, time from the injected `Clock`. Used by the
 * HTTP poller, the embedding and chat clients, the CLI's calls to a running platform, the batch
 * DAG and the supervisor of long-running sources and jobs.
 */

/**
 * Parses Retry-After: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns ms from `nowMs`
 * (never negative) or null when absent or unparseable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/**
 * Backoff before retry number `attempt` (0-based) with "equal jitter": half of
 * min(max, base·2^attempt) fixed plus a random share of the other half, so retries spread out but
 * never come back immediately.
 */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 52));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface RetryOptions {
  /** Attempts in all, the first included (≥ 1). */
  attemptsMax: number;
  /** First backoff step; doubles per attempt, with jitter. */
  baseMs: number;
  /** Largest backoff. */
  maxMs: number;
  /**
   * Largest `Retry-After` waited for (default `maxMs`). A server asking for a longer pause ends the
   * retries at once with its error, which says when to come back (`retryAfterMs`).
   */
  retryAfterMaxMs?: number;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
  /**
   * Whether a failure is worth another attempt. Default: everything except TributaryErrors of the
   * user domain (bad input or configuration fails the same way again).
   */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait (for logs and counters). */
  onRetry?: (info: { attempt: number; waitMs: number; error: unknown }) => void;
}

/**
 * Default of `RetryOptions.retryable`: everything but the user's own mistakes; a refusal that says
 * when to come back (429 rate limit, back-pressure) is always worth another attempt.
 */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof TributaryError)) return true;
  if (error.retryAfterMs !== undefined || error.code === 'RATE_LIMITED') return true;
  return error.domain !== 'user';
}

/**
 * Runs `attempt(n)` (n from 1) until it resolves, a failure is not retryable, or `attemptsMax`
 * attempts failed; then throws the last failure. Between attempts it waits the failure's
 * `retryAfterMs` (a TributaryError built from a 429/503's `Retry-After`) or else the jittered
 * backoff.
 *
 * @example
 * const body = await retry((attempt) => fetchPage(url), { attemptsMax: 5, baseMs: 500, maxMs: 30_000 });
 */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const retryable = options.retryable ?? isRetryable;
  const retryAfterMaxMs = options.retryAfterMaxMs ?? options.maxMs;
  const attemptsMax = Math.max(1, Math.floor(options.attemptsMax));
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= attemptsMax || options.signal?.aborted === true || !retryable(error)) throw error;
      const asked = error instanceof TributaryError ? error.retryAfterMs : undefined;
      if (asked !== undefined && asked > retryAfterMaxMs) throw error;
      const waitMs = asked ?? backoffMs(n - 1, options.baseMs, options.maxMs, options.random);
      options.onRetry?.({ attempt: n, waitMs, error });
      await clock.sleep(waitMs, options.signal);
    }
  }
}
