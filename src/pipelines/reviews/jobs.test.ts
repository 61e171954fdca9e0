import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../log/index.js';
import { VaderSentiment } from '../../ml/index.js';
import { acceptReview, classify, decodeRawReview, silverRow } from './jobs.js';

function record(batch: Uint8Array, at: number, value: string, file: string, line: string): number {
  // Lays value, file and line out in `batch` from `at`, as the embedded log's views into one
  // read buffer; returns where the next record starts.
  const encoder = new TextEncoder();
  let p = at;
  for (const part of [value, file, line]) {
    const bytes = encoder.encode(part);
    batch.set(bytes, p);
    p += bytes.length;
  }
  return p;
}

function view(batch: Uint8Array, at: number, lengths: [number, number, number]): LogRecord {
  const [v, f, l] = lengths;
  return {
    topic: 'reviews.raw',
    partition: 0,
    offset: 0,
    timestamp: 0,
    key: null,
    value: batch.subarray(at, at + v),
    headers: {
      'tributary.file': batch.subarray(at + v, at + v + f),
      'tributary.line': batch.subarray(at + v + f, at + v + f + l),
    },
  };
}

describe('reviews.ingest per record', () => {
  it('decodes value and spool headers from views into a reused read buffer', () => {
    const batch = new Uint8Array(256);
    const line = '{"asin":"B1","text":"ok","rating":5}';
    record(batch, 0, line, 'a.jsonl', '12');
    const first = decodeRawReview(view(batch, 0, [line.length, 7, 2]));
    expect(first).toEqual({ raw: line, file: 'a.jsonl', line: 12 });
    // The log reuses its buffer for the next batch: a new file of the same length must not be
    // mistaken for the one before.
    record(batch, 0, line, 'b.jsonl', '3');
    expect(decodeRawReview(view(batch, 0, [line.length, 7, 1]))).toEqual({
      raw: line,
      file: 'b.jsonl',
      line: 3,
    });
    expect(first.file).toBe('a.jsonl');
    // A line header that is not plain digits reads as Number() reads it.
    record(batch, 0, line, 'b.jsonl', ' 7');
    expect(decodeRawReview(view(batch, 0, [line.length, 7, 2])).line).toBe(7);
  });

  it('keeps the decode-error header and quarantines the record with it', () => {
    const batch = new TextEncoder().encode('{notjson}f.csv9');
    const r = view(batch, 0, [9, 5, 1]);
    r.headers['tributary.decode-error'] = new TextEncoder().encode('row 9: not valid JSON');
    const raw = decodeRawReview(r);
    expect(raw).toEqual({ raw: '{notjson}', file: 'f.csv', line: 9, decodeError: 'row 9: not valid JSON' });
    expect(classify(raw)).toMatchObject({
      kind: 'quarantined',
      reason: 'invalid_json: row 9: not valid JSON',
    });
  });

  it('scores an accepted review once and shapes its silver row', () => {
    const model = new VaderSentiment();
    const raw = {
      raw: JSON.stringify({ asin: 'B1', text: 'I love it!', rating: 5, timestamp: 1000 }),
      file: 'f',
      line: 1,
    };
    const routed = acceptReview(classify(raw), (t) => model.scoreSync(t));
    expect(routed.kind).toBe('accepted');
    if (routed.kind !== 'accepted') return;
    expect(routed.review).toMatchObject({
      product_id: 'B1',
      rating: 5,
      sentiment_score: 0.6696,
      sentiment_label: 'positive',
    });
    // The row is the review itself: review_ts stays epoch ms, which the TIMESTAMP column stores.
    const row = silverRow(routed.review);
    expect(row).toBe(routed.review);
    expect(row.review_ts).toBe(1000);
  });
});
