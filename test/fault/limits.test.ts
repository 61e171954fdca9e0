/**
 * Issue 17 §6: limits that hold under a flood. The in-memory rate limiter keeps the buckets of
 * keys in use when a flood of new keys passes its bound (least recently used are dropped).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/index.js';
import { MemoryRateLimiter } from '../../src/serve/index.js';

describe('rate limiter under a key flood', () => {
  it('keeps a limited key limited while 150k new keys pass through', () => {
    const clock = new ManualClock(1_000_000);
    const limiter = new MemoryRateLimiter({ ratePerSecond: 1, burst: 5 }, clock);
    for (let i = 0; i < 5; i++) expect(limiter.takeNow('victim').allowed).toBe(true);
    expect(limiter.takeNow('victim').allowed).toBe(false);
    for (let i = 0; i < 150_000; i++) {
      limiter.takeNow(`flood-${i}`);
      // The victim keeps calling (its bucket is in use); the clock does not move, so no refill.
      if (i % 1000 === 0) expect(limiter.takeNow('victim').allowed, `after ${i} flood keys`).toBe(false);
    }
    expect(limiter.takeNow('victim').allowed).toBe(false);
  });
});
