import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { TributaryError } from './errors.js';
import { supervise } from './supervise.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('supervise', () => {
  it('restarts failing work with a capped, growing backoff and keeps the last error in its status', async () => {
    const clock = new ManualClock(0);
    const startedAt: number[] = [];
    const supervised = supervise({
      name: 'flaky',
      clock,
      random: () => 1,
      backoff: { baseMs: 100, maxMs: 300 },
      run: (signal) => {
        startedAt.push(clock.now());
        if (startedAt.length <= 4)
          return Promise.reject(new TributaryError('EXTERNAL', `boom ${startedAt.length}`));
        return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      },
    });
    for (let i = 0; i < 100 && startedAt.length < 5; i++) {
      await tick();
      clock.advance(10);
    }
    // Waits of 100, 200, 300, 300 (doubling, capped) between the five starts.
    expect(startedAt.map((t, i) => (i === 0 ? t : t - startedAt[i - 1]))).toEqual([0, 100, 200, 300, 300]);
    expect(supervised.status()).toMatchObject({ state: 'running', restarts: 4, lastError: 'boom 4' });
    await supervised.stop();
    expect(supervised.status().state).toBe('stopped');
  });

  it('stops during a backoff at once, ends as finished when the work ends, and gives up after restartsMax', async () => {
    const clock = new ManualClock(0);
    const waiting = supervise({ name: 'w', clock, run: () => Promise.reject(new Error('down')) });
    await tick();
    expect(waiting.status()).toMatchObject({ state: 'backoff', lastError: 'down' });
    await waiting.stop();
    expect(waiting.status().state).toBe('stopped');

    const once = supervise({ name: 'once', clock, run: () => Promise.resolve() });
    await once.done;
    expect(once.status().state).toBe('finished');

    const hopeless = supervise({
      name: 'h',
      clock,
      restartsMax: 1,
      backoff: { baseMs: 1, maxMs: 1 },
      run: () => Promise.reject(new Error('always')),
    });
    for (let i = 0; i < 10 && hopeless.status().state !== 'failed'; i++) {
      await tick();
      clock.advance(5);
    }
    await hopeless.done;
    expect(hopeless.status()).toMatchObject({ state: 'failed', restarts: 1, lastError: 'always' });
  });

  it("waits at least a failure's Retry-After before restarting", async () => {
    const clock = new ManualClock(0);
    const startedAt: number[] = [];
    const supervised = supervise({
      name: 'rate-limited',
      clock,
      backoff: { baseMs: 100, maxMs: 1000 },
      run: (signal) => {
        startedAt.push(clock.now());
        if (startedAt.length === 1)
          return Promise.reject(new TributaryError('RATE_LIMITED', '429', { retryAfterMs: 5000 }));
        return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      },
    });
    for (let i = 0; i < 200 && startedAt.length < 2; i++) {
      await tick();
      clock.advance(50);
    }
    expect(startedAt).toEqual([0, 5000]);
    await supervised.stop();
  });
});
