import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/index.js';
import { openNorthwindSource, redactUrl } from './source.js';

describe('Northwind source selection', () => {
  it('never shows the password of a source URL', () => {
    expect(redactUrl('postgres://app:s3cret@db.example:5432/northwind')).toBe(
      'postgres://app@db.example:5432/northwind',
    );
    expect(redactUrl('not a url')).not.toContain('not a url');
  });

  it('an unreachable source is UNAVAILABLE, named without its password', async () => {
    const error: unknown = await openNorthwindSource({
      dataDir: '/nonexistent',
      sourceUrl: 'postgres://app:s3cret@127.0.0.1:1/northwind',
    }).catch((e: unknown) => e);
    expect(isTributaryError(error, 'UNAVAILABLE')).toBe(true);
    expect((error as Error).message).toContain('postgres://app@127.0.0.1:1/northwind');
    expect((error as Error).message).not.toContain('s3cret');
  });
});
