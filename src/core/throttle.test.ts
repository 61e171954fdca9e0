import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { TributaryError } from './errors.js';
import { backoffMs, parseRetryAfter, retry } from './retry.js';
import { RateBudgets, Throttle } from './throttle.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `work` while moving the manual clock forward in `stepMs` steps until it settles. */
async function withClock<T>(
  clock: ManualClock,
  work: Promise<T>,
  stepMs = 1,
  stepsMax = 100_000,
): Promise<T> {
  let settled = false;
  const watched = work.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  for (let i = 0; i < stepsMax && !settled; i++) {
    await tick();
    if (!settled) clock.advance(stepMs);
  }
  return watched;
}

describe('Throttle, sliding window', () => {
  it('never starts more than N requests in any window, nor any request inside a 429 pause (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          requestsMax: fc.integer({ min: 1, max: 5 }),
          clients: fc.array(
            fc.array(
              fc.record({
                latencyMs: fc.integer({ min: 0, max: 400 }),
                retryAfterMs: fc.option(fc.integer({ min: 0, max: 2500 }), { freq: 3 }),
              }),
              { minLength: 1, maxLength: 6 },
            ),
            { minLength: 1, maxLength: 4 },
          ),
          stepsMs: fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 20 }),
        }),
        async ({ requestsMax, clients, stepsMs }) => {
          const clock = new ManualClock(1_000_000);
          const throttle = new Throttle({ mode: 'sliding-window', requestsMax, windowMs: 1000 }, clock);
          let seq = 0;
          const starts: { t: number; seq: number }[] = [];
          const pauses: { atMs: number; untilMs: number; seq: number }[] = [];
          const running = clients.map(async (requests) => {
            for (const request of requests) {
              await throttle.take();
              starts.push({ t: clock.now(), seq: seq++ });
              await clock.sleep(request.latencyMs);
              if (request.retryAfterMs !== null) {
                throttle.pause(request.retryAfterMs);
                pauses.push({ atMs: clock.now(), untilMs: clock.now() + request.retryAfterMs, seq: seq++ });
              }
            }
          });
          const all = Promise.all(running);
          let done = false;
          void all.then(() => (done = true));
          for (let i = 0; !done && i < 20_000; i++) {
            await tick();
            if (!done) clock.advance(stepsMs[i % stepsMs.length]);
          }
          expect(done).toBe(true);
          for (let i = requestsMax; i < starts.length; i++)
            expect(starts[i].t - starts[i - requestsMax].t).toBeGreaterThanOrEqual(1000);
          // A start in the very millisecond a 429 arrives may have been allowed just before it:
          // every later start must wait for the Retry-After.
          for (const pause of pauses)
            for (const start of starts)
              if (start.seq > pause.seq && start.t > pause.atMs)
                expect(start.t).toBeGreaterThanOrEqual(pause.untilMs);
        },
      ),
      { seed: 1912, numRuns: 60 },
    );
  });

  it('lets N requests go back to back, then waits for the oldest to leave the window', async () => {
    const clock = new ManualClock(0);
    const throttle = new Throttle({ mode: 'sliding-window', requestsMax: 4 }, clock);
    const startedAt: number[] = [];
    const takes = Array.from({ length: 6 }, () => throttle.take().then(() => startedAt.push(clock.now())));
    await withClock(clock, Promise.all(takes), 50);
    expect(startedAt.slice(0, 4)).toEqual([0, 0, 0, 0]);
    expect(startedAt[4]).toBe(1000);
    expect(startedAt[5]).toBe(1000);
  });

  it('is needed: a token bucket with burst N lets N + 1 start within one second', () => {
    const clock = new ManualClock(0);
    const bucket = new Throttle({ ratePerSecond: 4, burst: 4 }, clock);
    const window = new Throttle({ mode: 'sliding-window', requestsMax: 4 }, clock);
    expect([1, 2, 3, 4].map(() => bucket.tryTake().allowed && window.tryTake().allowed)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    clock.advance(250);
    expect(bucket.tryTake().allowed).toBe(true); // the fifth start inside [0, 1000): TMDB answers 429
    expect(window.tryTake()).toEqual({ allowed: false, remaining: 0, retryAfterMs: 750 });
  });

  it('counts a request from when it was sent (noteSent), not from when it was allowed', () => {
    const clock = new ManualClock(0);
    const throttle = new Throttle({ mode: 'sliding-window', requestsMax: 1 }, clock);
    expect(throttle.tryTake().allowed).toBe(true);
    clock.advance(300); // DNS was slow: the request leaves at 300
    throttle.noteSent();
    clock.advance(800);
    expect(throttle.tryTake()).toEqual({ allowed: false, remaining: 0, retryAfterMs: 200 });
    clock.advance(200);
    expect(throttle.tryTake().allowed).toBe(true);
  });
});

describe('Throttle, token bucket', () => {
  it('spaces requests 1000/rate ms apart with burst 1, and a pause holds every start back', async () => {
    const clock = new ManualClock(0);
    const throttle = new Throttle({ ratePerSecond: 4 }, clock);
    const startedAt: number[] = [];
    await withClock(
      clock,
      (async () => {
        for (let i = 0; i < 3; i++) {
          await throttle.take();
          startedAt.push(clock.now());
        }
        throttle.pause(2000);
        await throttle.take();
        startedAt.push(clock.now());
      })(),
    );
    expect(startedAt).toEqual([0, 250, 500, 2500]);
  });

  it('answers at once with tryTake: allowed while tokens last, then how long to wait', () => {
    const clock = new ManualClock(0);
    const throttle = new Throttle({ ratePerSecond: 2, burst: 3 }, clock);
    expect([1, 2, 3].map(() => throttle.tryTake().allowed)).toEqual([true, true, true]);
    expect(throttle.tryTake()).toEqual({ allowed: false, remaining: 0, retryAfterMs: 500 });
    expect(throttle.idle()).toBe(false);
    clock.advance(1500);
    expect(throttle.idle()).toBe(true);
  });

  it('refuses impossible limits', () => {
    expect(() => new Throttle({ ratePerSecond: 0 })).toThrow(/ratePerSecond must be > 0/);
    expect(() => new Throttle({ mode: 'sliding-window', requestsMax: 0 })).toThrow(/requestsMax/);
  });
});

describe('RateBudgets', () => {
  it('hands every user of a name the same throttle and refuses a conflicting declaration', () => {
    const budgets = new RateBudgets(new ManualClock(0));
    const a = budgets.declare('tmdb', { mode: 'sliding-window', requestsMax: 4 });
    expect(budgets.declare('tmdb', { mode: 'sliding-window', requestsMax: 4, windowMs: 1000 })).toBe(a);
    expect(budgets.get('tmdb')).toBe(a);
    expect(() => budgets.declare('tmdb', { ratePerSecond: 4 })).toThrow(/declared twice/);
    expect(() => budgets.get('omdb')).toThrow(/no rate budget named omdb; declared: tmdb/);
  });
});

describe('retry', () => {
  it('parses Retry-After as seconds or HTTP date', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10_000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:29:00 GMT')),
    ).toBe(0);
    expect(parseRetryAfter('soon', 0)).toBeNull();
    expect(parseRetryAfter(undefined, 0)).toBeNull();
  });

  it('backs off exponentially with equal jitter, capped', () => {
    expect([0, 1, 2, 3].map((a) => backoffMs(a, 100, 1000, () => 0))).toEqual([50, 100, 200, 400]);
    expect([3, 4, 60, 5000].map((a) => backoffMs(a, 100, 1000, () => 1))).toEqual([800, 1000, 1000, 1000]);
  });

  it('waits a Retry-After, else the backoff, and stops at attemptsMax with the last failure', async () => {
    const clock = new ManualClock(0);
    const calls: number[] = [];
    const waits: number[] = [];
    const failure = (n: number) =>
      n === 1
        ? new TributaryError('RATE_LIMITED', 'slow down', { retryAfterMs: 700 })
        : new TributaryError('EXTERNAL', `boom ${n}`);
    const run = retry(
      (n) => {
        calls.push(clock.now());
        return Promise.reject(failure(n));
      },
      {
        attemptsMax: 3,
        baseMs: 100,
        maxMs: 1000,
        clock,
        random: () => 0,
        onRetry: ({ waitMs }) => waits.push(waitMs),
      },
    );
    await expect(withClock(clock, run)).rejects.toThrow('boom 3');
    expect(waits).toEqual([700, 100]);
    expect(calls).toEqual([0, 700, 800]);
  });

  it('gives up at once on user errors and on a Retry-After beyond its cap', async () => {
    let calls = 0;
    const user = retry(
      () => {
        calls++;
        return Promise.reject(new TributaryError('UNAUTHENTICATED', 'bad key', { domain: 'user' }));
      },
      { attemptsMax: 5, baseMs: 1, maxMs: 10 },
    );
    await expect(user).rejects.toThrow('bad key');
    expect(calls).toBe(1);
    const long = retry(
      () =>
        Promise.reject(
          new TributaryError('RATE_LIMITED', 'come back in an hour', { retryAfterMs: 3_600_000 }),
        ),
      { attemptsMax: 5, baseMs: 1, maxMs: 10, retryAfterMaxMs: 60_000 },
    );
    await expect(long).rejects.toMatchObject({ retryAfterMs: 3_600_000 });
  });
});
