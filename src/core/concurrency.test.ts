import { describe, expect, it } from 'vitest';
import { forEachBounded, runBounded } from './concurrency.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('bounded concurrency', () => {
  it('runBounded keeps at most N in flight and answers every outcome in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await runBounded([1, 2, 3, 4, 5, 6], 2, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await tick();
      inFlight--;
      if (n === 3) throw new Error('three');
      return n * 10;
    });
    expect(peak).toBe(2);
    expect(results.map((r) => (r.ok ? r.value : (r.error as Error).message))).toEqual([
      10,
      20,
      'three',
      40,
      50,
      60,
    ]);
  });

  it('forEachBounded starts nothing after a failure and rejects with it once the others settled', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const run = forEachBounded([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await tick();
      if (n === 1) throw new Error('one');
      finished.push(n);
    });
    await expect(run).rejects.toThrow('one');
    expect(started).toEqual([0, 1, 2]);
    expect(finished).toEqual([0, 2]);
  });
});
