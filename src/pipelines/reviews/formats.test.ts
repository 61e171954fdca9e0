import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashedId, normaliseReview, parsePythonLiteral } from './formats.js';

const source = { file: 'f.jsonl', line: 7 };

describe('review ids', () => {
  it('keeps hashed ids stable: SHA-256 of product, user, time and text, first 96 bits', () => {
    // Pinned: ids already in silver tables must not change when the hashing code does.
    expect(hashedId('B1', 'A9', Date.UTC(2014, 1, 3), 'Fine.')).toBe('h:e3018c6331b02ea6f3cf0773');
    expect(hashedId('B1', null, null, 'é 😁')).toBe(
      `h:${createHash('sha256').update('B1\u0000\u0000\u0000é 😁').digest('hex').slice(0, 24)}`,
    );
  });
});

describe('review layouts', () => {
  it('reads the 2014/2018 layout, falling back to reviewTime without unixReviewTime', () => {
    const result = normaliseReview(
      JSON.stringify({
        reviewerID: 'A9',
        asin: 'B1',
        reviewText: 'Fine.',
        overall: 4.0,
        summary: 'ok',
        reviewTime: '02 3, 2014',
      }),
      source,
    );
    expect(result).toEqual({
      ok: true,
      review: {
        review_id: hashedId('B1', 'A9', Date.UTC(2014, 1, 3), 'Fine.'),
        product_id: 'B1',
        user_id: 'A9',
        rating: 4,
        title: 'ok',
        text: 'Fine.',
        review_ts: Date.UTC(2014, 1, 3),
        source_file: 'f.jsonl',
        source_line: 7,
        source_format: 'amazon-2014',
      },
    });
  });

  it('reads the 2023 layout (timestamp in ms, parent_asin when asin is empty)', () => {
    const result = normaliseReview(
      JSON.stringify({
        rating: 2,
        title: 't',
        text: 'meh',
        asin: '',
        parent_asin: 'P9',
        user_id: 'U',
        timestamp: 1_600_000_000_123,
      }),
      source,
    );
    expect(result.ok && result.review).toMatchObject({
      product_id: 'P9',
      rating: 2,
      review_ts: 1_600_000_000_123,
      source_format: 'amazon-2023',
    });
  });

  it('reads the fine-food CSV layout with its own id', () => {
    const result = normaliseReview(
      JSON.stringify({
        Id: '42',
        ProductId: 'B0',
        UserId: 'U1',
        Score: '3',
        Time: '1300000000',
        Summary: 's',
        Text: 'x',
      }),
      source,
    );
    expect(result.ok && result.review).toMatchObject({
      review_id: 'fine-food:42',
      rating: 3,
      review_ts: 1_300_000_000_000,
    });
  });

  it('quarantines with a stable reason code', () => {
    const reason = (raw: string, decodeError?: string) => {
      const r = normaliseReview(raw, decodeError === undefined ? source : { ...source, decodeError });
      return r.ok ? 'accepted' : r.reason;
    };
    expect(reason('{"asin":"B","reviewText":"t","overall":0}')).toBe('rating_out_of_range');
    expect(reason('{"asin":"B","reviewText":"t","overall":4.5}')).toBe('rating_out_of_range');
    expect(reason('{"asin":"B","reviewText":"t","overall":"five"}')).toBe('rating_out_of_range');
    expect(reason('{"asin":"B","reviewText":""}')).toBe('missing_text');
    expect(reason('{"reviewerID":"A","reviewText":"t"}')).toBe('missing_product');
    expect(reason('{"asin":"B","reviewText":"t","unixReviewTime":-5}')).toBe('invalid_timestamp');
    expect(reason('{"a":1}')).toBe('unknown_layout');
    expect(reason('[1,2]')).toBe('invalid_json');
    expect(reason('{"asin', 'f line 1: not valid JSON (x)')).toBe('invalid_json');
    expect(reason('a,b,c', 'f line 2: CSV row has 3 fields, header has 2')).toBe('malformed_record');
    expect(reason('{"asin":"B","reviewText":"t"}')).toBe('accepted');
  });

  it('a review without stars or time is accepted with nulls', () => {
    const r = normaliseReview('{"asin":"B","reviewText":"t"}', source);
    expect(r.ok && [r.review.rating, r.review.review_ts]).toEqual([null, null]);
  });
});

describe('loose JSON (Python literals of the 2014 dump)', () => {
  it('parses dicts, lists, quotes, escapes, True/False/None and numbers', () => {
    expect(
      parsePythonLiteral(
        `{'a': 'it\\'s', "b": [1, -2.5, True, False, None], 'c': {'d': "x\\ny"}, 'e': '\\x41\\u00e9',}`,
      ),
    ).toEqual({ a: "it's", b: [1, -2.5, true, false, null], c: { d: 'x\ny' }, e: 'Aé' });
  });

  it('refuses what is not one literal', () => {
    for (const text of ["{'a': 1", "{'a' 1}", "{'a': 1} x", '{a: 1}', "'unterminated", '', "{'a': [1, 2}"]) {
      expect(parsePythonLiteral(text), text).toBeUndefined();
    }
  });

  it('round-trips any JSON-like value written as a Python literal (fixed seed)', () => {
    const py = (value: unknown): string => {
      if (value === null) return 'None';
      if (value === true) return 'True';
      if (value === false) return 'False';
      if (typeof value === 'number') return String(value);
      if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
      if (Array.isArray(value)) return `[${value.map(py).join(', ')}]`;
      return `{${Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `${py(k)}: ${py(v)}`)
        .join(', ')}}`;
    };
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string(),
          fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('-0')),
        ),
        (object) => {
          expect(parsePythonLiteral(py(object))).toEqual(JSON.parse(JSON.stringify(object)));
        },
      ),
      { seed: 20261203, numRuns: 200 },
    );
  });
});
