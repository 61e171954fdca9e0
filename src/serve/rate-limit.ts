import { Redis } from 'ioredis';
import { systemClock, Throttle, TributaryError, type Clock, limits } from '../core/index.js';

export interface RateLimitDecision {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** When refused: how long until one token is available. */
  retryAfterMs: number;
}

/** Token bucket per key: `ratePerSecond` tokens refill continuously up to `burst`. */
export interface RateLimiter {
  take(key: string): Promise<RateLimitDecision>;
  close(): Promise<void>;
}

export interface RateLimitOptions {
  ratePerSecond: number;
  burst: number;
}

/**
 * Per-key limits in this process, one core `Throttle` (token bucket) per key. Keys are kept in
 * least-recently-used order, so a flood of new keys forgets the idlest ones first and never
 * resets the limits of keys in use.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly #options: RateLimitOptions;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Throttle>();

  constructor(options: RateLimitOptions, clock: Clock = systemClock) {
    this.#options = options;
    this.#clock = clock;
  }

  take(key: string): Promise<RateLimitDecision> {
    return Promise.resolve(this.takeNow(key));
  }

  /**
   * `take` without the promise: the bucket lives in this process, so callers on a hot path (cached
   * reads) can decide without a microtask hop.
   */
  takeNow(key: string): RateLimitDecision {
    let bucket = this.#buckets.get(key);
    if (bucket) {
      // Move to the most recently used end (Map keeps insertion order).
      this.#buckets.delete(key);
    } else {
      if (this.#buckets.size >= limits.rateLimitMemoryKeysMax) this.#evict();
      bucket = new Throttle(
        { ratePerSecond: this.#options.ratePerSecond, burst: this.#options.burst },
        this.#clock,
      );
    }
    this.#buckets.set(key, bucket);
    return bucket.tryTake();
  }

  #evict(): void {
    const oldest = this.#buckets.keys().next();
    if (!oldest.done) this.#buckets.delete(oldest.value);
  }

  close(): Promise<void> {
    this.#buckets.clear();
    return Promise.resolve();
  }
}

/**
 * Redis token bucket, atomic in one Lua script so several API processes share one limit. State is
 * a hash per key: `tokens` (float) and `ts` (ms, from Redis' own clock so API hosts' clocks may
 * disagree). The key expires once the bucket would be full again.
 *
 * KEYS[1] bucket key; ARGV[1] rate per second; ARGV[2] burst.
 * Returns { allowed (0|1), remaining tokens (floor), retryAfterMs }.
 */
const tokenBucketScript = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
local elapsed = math.max(0, now - ts)
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return { allowed, math.floor(tokens), retry }
`;

type RedisWithBucket = Redis & {
  tributaryTokenBucket(key: string, rate: number, burst: number): Promise<[number, number, number]>;
};

export class RedisRateLimiter implements RateLimiter {
  readonly #redis: RedisWithBucket;
  readonly #options: RateLimitOptions;
  readonly #prefix: string;

  constructor(url: string, options: RateLimitOptions & { prefix?: string }) {
    this.#options = options;
    this.#prefix = options.prefix ?? 'tributary:ratelimit:';
    const redis = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      connectTimeout: 2000,
    });
    // Connection errors surface on each `take`; this only stops ioredis from printing them twice.
    redis.on('error', () => undefined);
    redis.defineCommand('tributaryTokenBucket', { numberOfKeys: 1, lua: tokenBucketScript });
    this.#redis = redis as RedisWithBucket;
  }

  async take(key: string): Promise<RateLimitDecision> {
    let reply: [number, number, number];
    try {
      reply = await this.#redis.tributaryTokenBucket(
        this.#prefix + key,
        this.#options.ratePerSecond,
        this.#options.burst,
      );
    } catch (error) {
      throw new TributaryError(
        'UNAVAILABLE',
        `rate limiter: Redis is unavailable (${(error as Error).message})`,
        { cause: error, retryAfterMs: 1000 },
      );
    }
    return { allowed: reply[0] === 1, remaining: reply[1], retryAfterMs: reply[2] };
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

export function createRateLimiter(
  options: RateLimitOptions & { redisUrl?: string | undefined },
): RateLimiter {
  return options.redisUrl ? new RedisRateLimiter(options.redisUrl, options) : new MemoryRateLimiter(options);
}
