import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../core/index.js';
import { mergeSchema, widenType } from './schema.js';

describe('schema merge', () => {
  it('adds new columns and widens integers and floats', () => {
    expect(widenType('INTEGER', 'BIGINT')).toBe('BIGINT');
    expect(widenType('BIGINT', 'int4')).toBe('BIGINT');
    expect(widenType('FLOAT', 'DOUBLE')).toBe('DOUBLE');
    expect(widenType('VARCHAR', 'BIGINT')).toBeNull();
    const merged = mergeSchema(
      'silver.t',
      [{ name: 'a', type: 'INTEGER' }],
      [
        { name: 'a', type: 'BIGINT' },
        { name: 'b', type: 'text' },
      ],
    );
    expect(merged).toEqual([
      { name: 'a', type: 'BIGINT' },
      { name: 'b', type: 'VARCHAR' },
    ]);
  });

  it('refuses an incompatible change, naming table and column', () => {
    try {
      mergeSchema('silver.t', [{ name: 'price', type: 'DOUBLE' }], [{ name: 'price', type: 'VARCHAR' }]);
      expect.unreachable();
    } catch (error) {
      expect(isTributaryError(error, 'SCHEMA_MISMATCH')).toBe(true);
      expect((error as Error).message).toMatch(/silver\.t.*column price/);
    }
  });
});
