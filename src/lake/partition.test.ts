import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePartitionPath,
  decodePartitionValue,
  encodePartitionPath,
  encodePartitionValue,
  hiveNullValue,
} from './partition.js';

describe('partition path encoding', () => {
  it('matches the Hive/DuckDB spelling for common values', () => {
    expect(encodePartitionPath({ date: '2026-11-22', hour: '05' })).toBe('date=2026-11-22/hour=05');
    expect(encodePartitionValue('a/b')).toBe('a%2Fb');
    expect(encodePartitionValue('x=y z')).toBe('x%3Dy%20z');
    expect(encodePartitionValue('é€')).toBe('%C3%A9%E2%82%AC');
    expect(encodePartitionValue('%41')).toBe('%2541');
    expect(encodePartitionValue(null)).toBe(hiveNullValue);
    expect(encodePartitionValue(hiveNullValue)).not.toBe(hiveNullValue);
    expect(decodePartitionValue(encodePartitionValue(hiveNullValue))).toBe(hiveNullValue);
  });

  it('round-trips any values: slashes, equals signs, spaces, unicode, null (property, seed 42)', () => {
    const value = fc.oneof(
      fc.constant(null),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.string({ unit: fc.constantFrom('/', '=', ' ', '%', '_', '.', 'a', 'é', '😀', '\n'), maxLength: 8 }),
      fc.constant(hiveNullValue),
      fc.constant('..'),
    );
    const column = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/);
    const partition = fc.uniqueArray(fc.tuple(column, value), {
      minLength: 1,
      maxLength: 4,
      selector: ([c]) => c,
    });
    fc.assert(
      fc.property(partition, (entries) => {
        const values = Object.fromEntries(entries);
        const encoded = encodePartitionPath(values);
        // Every level is exactly one path segment, none of them '.' or '..'.
        const segments = encoded.split('/');
        expect(segments).toHaveLength(entries.length);
        for (const segment of segments)
          expect(segment).toMatch(/^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9\-_.~%]*$/);
        expect(
          decodePartitionPath(
            encoded,
            entries.map(([c]) => c),
          ),
        ).toEqual(values);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('refuses malformed paths', () => {
    expect(() => decodePartitionPath('date')).toThrow(/not column=value/);
    expect(() => decodePartitionPath('a=1/b=2', ['a'])).toThrow();
    expect(() => decodePartitionPath('a=%E0%A4%A', ['a'])).toThrow(/percent-encoding/);
    expect(() => encodePartitionPath({ 'bad col': 'x' })).toThrow(/identifier/);
  });
});
