import { describe, expect, it } from 'vitest';
import { ReadCache } from './cache.js';

const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');

describe('ReadCache', () => {
  it('drops a table’s entries on commit and ignores reads that straddle a commit', () => {
    const cache = new ReadCache();
    const generation = cache.generation('gold.a');
    cache.set('gold.a', 'q1', generation, 'one');
    cache.set('gold.b', 'q1', cache.generation('gold.b'), 'two');
    expect(text(cache.get('gold.a', 'q1'))).toBe('one');
    cache.invalidate('gold.a');
    expect(text(cache.get('gold.a', 'q1'))).toBeUndefined();
    expect(text(cache.get('gold.b', 'q1'))).toBe('two');
    cache.set('gold.a', 'q1', generation, 'stale');
    expect(text(cache.get('gold.a', 'q1'))).toBeUndefined();
  });

  it('evicts the least recently used entry beyond its bounds', () => {
    const cache = new ReadCache({ entriesMax: 2 });
    cache.set('t', 'a', 0, 'A');
    cache.set('t', 'b', 0, 'B');
    cache.get('t', 'a');
    cache.set('t', 'c', 0, 'C');
    expect(text(cache.get('t', 'b'))).toBeUndefined();
    expect(text(cache.get('t', 'a'))).toBe('A');
    expect(cache.size).toBe(2);
  });
});
