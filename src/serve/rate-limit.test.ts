import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { MemoryRateLimiter, RedisRateLimiter } from './rate-limit.js';

describe('MemoryRateLimiter', () => {
  it('allows a burst, then refills at the rate', async () => {
    const clock = new ManualClock(0);
    const limiter = new MemoryRateLimiter({ ratePerSecond: 2, burst: 3 }, clock);
    const first = await Promise.all([1, 2, 3, 4].map(() => limiter.take('k')));
    expect(first.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(first[3].retryAfterMs).toBe(500);
    expect((await limiter.take('other')).allowed).toBe(true);
    clock.advance(499);
    expect((await limiter.take('k')).allowed).toBe(false);
    clock.advance(2);
    expect((await limiter.take('k')).allowed).toBe(true);
    clock.advance(60_000);
    const refilled = await limiter.take('k');
    expect(refilled).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0 });
  });

  it('takeNow draws from the same bucket as take, without a promise', async () => {
    const clock = new ManualClock(0);
    const limiter = new MemoryRateLimiter({ ratePerSecond: 1, burst: 2 }, clock);
    expect(limiter.takeNow('k')).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0 });
    expect((await limiter.take('k')).remaining).toBe(0);
    expect(limiter.takeNow('k')).toEqual({ allowed: false, remaining: 0, retryAfterMs: 1000 });
    clock.advance(1000);
    expect(limiter.takeNow('k').allowed).toBe(true);
  });
});

// Redis runs locally on this machine (and in CI); the limiter's Lua script is exercised for real.
describe('RedisRateLimiter', () => {
  it('shares one bucket between limiter instances and reports Retry-After', async () => {
    const prefix = `tributary:test:${randomBytes(4).toString('hex')}:`;
    const a = new RedisRateLimiter('redis://127.0.0.1:6379', { ratePerSecond: 1, burst: 4, prefix });
    const b = new RedisRateLimiter('redis://127.0.0.1:6379', { ratePerSecond: 1, burst: 4, prefix });
    try {
      await a.ping();
      const decisions = [
        await a.take('key1'),
        await b.take('key1'),
        await a.take('key1'),
        await b.take('key1'),
        await a.take('key1'),
      ];
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, false]);
      expect(decisions[4].retryAfterMs).toBeGreaterThan(0);
      expect(decisions[4].retryAfterMs).toBeLessThanOrEqual(1000);
      expect((await b.take('key2')).allowed).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('fails with UNAVAILABLE when Redis cannot be reached', async () => {
    const limiter = new RedisRateLimiter('redis://127.0.0.1:1', { ratePerSecond: 1, burst: 1 });
    try {
      await expect(limiter.take('k')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await limiter.close();
    }
  });
});
