import { toTributaryError } from '../../core/index.js';
import type { Lake } from '../../lake/index.js';
import type { Log, LogRecord } from '../../log/index.js';
import { VaderSentiment, type SentimentModel, type SentimentResult } from '../../ml/index.js';
import {
  lakeSink,
  lakeTableTarget,
  sinkWhere,
  stream,
  type Sink,
  type StreamJob,
} from '../../stream/index.js';
import { normaliseReview, type Review, type ReviewFormat } from './formats.js';
import { reviewLimits } from './limits.js';

/** Topic the spool source appends every record of every file to, keyed by product. */
export const rawTopic = 'reviews.raw';
export const ingestJobName = 'reviews.ingest';

export const tables = {
  bronze: 'bronze.reviews',
  silver: 'silver.product_reviews',
  quarantine: 'silver.reviews_quarantine',
  duplicates: 'silver.reviews_duplicates',
  productSentiment: 'gold.product_sentiment',
  sentimentDaily: 'gold.sentiment_daily',
  ratingVsSentiment: 'gold.rating_vs_sentiment',
} as const;

/**
 * The raw zone as Flume's HDFS sink lays it out (`hdfs-reviews/YYYY-MM-DD/…` + `_SUCCESS`): every
 * table of the job is partitioned by ingestion date `dt` (UTC, the log append time); files roll
 * by count (`flushSize`, Flume's `hdfs.rollCount`), by time (`rotateIntervalMs`, `hdfs.rollInterval`)
 * and when idle (`idleMs`, `hdfs.idleTimeout`); the lake writes `_SUCCESS` in every partition a
 * commit completes.
 */
export const rawZoneSettings = {
  pathFormat: "'dt'=YYYY-MM-dd",
  flushSize: 10_000,
  rotateIntervalMs: 600_000,
  /** Short, so a file dropped into the spool shows on the dashboard within seconds under `up`. */
  idleMs: 2_000,
} as const;

/** A record of `reviews.raw` with where it came from (the spool source's headers). */
export interface RawReview {
  /** The record as read: a JSON line, a CSV row as a JSON object, or an undecodable line. */
  raw: string;
  file: string;
  line: number;
  decodeError?: string;
}

export interface ScoredReview extends Review {
  sentiment_score: number;
  sentiment_label: SentimentResult['label'];
  sentiment_confidence: number;
}

/** What the job routes to its tables: every record is exactly one of these (counts reconcile). */
export type RoutedReview =
  | { kind: 'candidate'; raw: RawReview; review: Review }
  | { kind: 'accepted'; raw: RawReview; review: ScoredReview }
  | { kind: 'duplicate'; raw: RawReview; review: Review }
  | { kind: 'quarantined'; raw: RawReview; reason: string; format: ReviewFormat | null };

/**
 * UTF-8 text of record bytes without a `Buffer` per call: the embedded log hands out views into
 * one read buffer per batch, so one `Buffer` over that `ArrayBuffer` is kept and sliced. The file
 * header repeats for every line of a file, so its last text is kept and reused while the bytes
 * are equal.
 */
class RecordText {
  #arrayBuffer: ArrayBufferLike | undefined;
  #buffer: Buffer | undefined;
  #lastFileBytes: Uint8Array | undefined;
  #lastFile = '';

  text(bytes: Uint8Array | null | undefined): string | undefined {
    if (bytes === null || bytes === undefined) return undefined;
    if (bytes.buffer !== this.#arrayBuffer) {
      this.#arrayBuffer = bytes.buffer;
      this.#buffer = Buffer.from(bytes.buffer, 0, bytes.buffer.byteLength);
    }
    return this.#buffer!.toString('utf8', bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  file(bytes: Uint8Array | undefined): string {
    if (bytes === undefined) return '';
    const last = this.#lastFileBytes;
    if (last !== undefined && last.byteLength === bytes.byteLength) {
      let i = 0;
      while (i < bytes.byteLength && last[i] === bytes[i]) i++;
      if (i === bytes.byteLength) return this.#lastFile;
    }
    this.#lastFile = this.text(bytes)!;
    // A copy: the log may reuse the memory the view points into for its next batch.
    this.#lastFileBytes = bytes.slice();
    return this.#lastFile;
  }

  /** A decimal header as `Number(text)` reads it, digits parsed in place (the spool writes decimals). */
  integer(bytes: Uint8Array | undefined): number {
    if (bytes === undefined) return 0;
    if (bytes.byteLength > 0 && bytes.byteLength <= 15) {
      let n = 0;
      let i = 0;
      for (; i < bytes.byteLength; i++) {
        const d = bytes[i] - 48;
        if (d < 0 || d > 9) break;
        n = n * 10 + d;
      }
      if (i === bytes.byteLength) return n;
    }
    return Number(this.text(bytes));
  }
}

const recordText = new RecordText();

/** Decodes a `reviews.raw` record with the spool's file, line and decode-error headers. */
export function decodeRawReview(record: LogRecord): RawReview {
  const headers = record.headers;
  const decodeErrorBytes = headers['tributary.decode-error'];
  const raw: RawReview = {
    raw: recordText.text(record.value) ?? '',
    file: recordText.file(headers['tributary.file']),
    line: recordText.integer(headers['tributary.line']),
  };
  if (decodeErrorBytes !== undefined) raw.decodeError = recordText.text(decodeErrorBytes);
  return raw;
}

export function classify(raw: RawReview): RoutedReview {
  const result = normaliseReview(raw.raw, raw);
  if (result.ok) return { kind: 'candidate', raw, review: result.review };
  return { kind: 'quarantined', raw, reason: `${result.reason}: ${result.detail}`, format: result.format };
}

/**
 * A candidate scored and accepted; anything else passes through. One object per review, written
 * field by field so every accepted review has the same shape (a spread of the review would copy
 * it into a fresh object of its own shape, and the score's result object is not kept).
 */
export function acceptReview(routed: RoutedReview, score: (text: string) => SentimentResult): RoutedReview {
  if (routed.kind !== 'candidate') return routed;
  return { kind: 'accepted', raw: routed.raw, review: scored(routed.review, score(routed.review.text)) };
}

/**
 * Scores the candidates of `batch` with one `scoreBatch` call; the other routes pass through. When
 * the batch call fails, each text is scored alone, so one text the model refuses dead-letters its
 * own review only.
 */
async function scoreBatch(model: SentimentModel, batch: RoutedReview[]): Promise<(RoutedReview | Error)[]> {
  const candidates = batch.filter(
    (r): r is Extract<RoutedReview, { kind: 'candidate' }> => r.kind === 'candidate',
  );
  // Duplicates and quarantined lines only (a file dropped again): nothing to score.
  if (candidates.length === 0) return batch;
  const results: (SentimentResult | Error)[] = await model
    .scoreBatch(candidates.map((r) => r.review.text))
    .catch(() =>
      Promise.all(
        candidates.map((r) =>
          model.score(r.review.text).catch((error: unknown) => toTributaryError(error, 'EXTERNAL')),
        ),
      ),
    );
  let next = 0;
  return batch.map((routed) => {
    if (routed.kind !== 'candidate') return routed;
    const result = results[next++];
    return result instanceof Error
      ? result
      : { kind: 'accepted', raw: routed.raw, review: scored(routed.review, result) };
  });
}

function scored(review: Review, sentiment: SentimentResult): ScoredReview {
  return {
    review_id: review.review_id,
    product_id: review.product_id,
    user_id: review.user_id,
    rating: review.rating,
    title: review.title,
    text: review.text,
    review_ts: review.review_ts,
    source_file: review.source_file,
    source_line: review.source_line,
    source_format: review.source_format,
    sentiment_score: sentiment.score,
    sentiment_label: sentiment.label,
    sentiment_confidence: sentiment.confidence,
  };
}

/**
 * The `silver.product_reviews` row of an accepted review: the review itself. Its `review_ts` (epoch
 * ms) goes into the TIMESTAMP column as the lake writer converts a number, the same value a `Date`
 * gave; no copy and no `Date` per row, which the sink buffers until its file rolls (they outlive
 * the young generation, so every object less is old-generation garbage less).
 */
export function silverRow(review: ScoredReview): Record<string, unknown> & ScoredReview {
  return review as Record<string, unknown> & ScoredReview;
}

const silverTypes = {
  review_id: 'VARCHAR',
  product_id: 'VARCHAR',
  user_id: 'VARCHAR',
  rating: 'INTEGER',
  title: 'VARCHAR',
  text: 'VARCHAR',
  review_ts: 'TIMESTAMP',
  source_file: 'VARCHAR',
  source_line: 'INTEGER',
  source_format: 'VARCHAR',
  sentiment_score: 'DOUBLE',
  sentiment_label: 'VARCHAR',
  sentiment_confidence: 'DOUBLE',
  dt: 'VARCHAR',
};

export interface ReviewJobDeps {
  log: Log;
  lake: Lake;
  /** Default the offline VADER model. A Hugging Face model scores asynchronously. */
  sentiment?: SentimentModel;
  /** Extra sinks fed with every accepted review (the retrieval index). */
  acceptedSinks?: Sink<ScoredReview>[];
  checkpointIntervalMs?: number;
  /** Overrides for tests (roll sizes). */
  rawZone?: Partial<typeof rawZoneSettings>;
}

/**
 * One pass over `reviews.raw`: every record lands in `bronze.reviews` as read; it is then
 * normalised and either quarantined (with the reason), dropped as a duplicate of a review id seen
 * before (recorded in `silver.reviews_duplicates`), or scored for sentiment and accepted into
 * `silver.product_reviews`. The five tables commit with the job's checkpoints, so a replay after a
 * crash neither loses nor repeats a row; the seen-ids state is checkpointed with them.
 */
export function reviewIngestJob(deps: ReviewJobDeps): StreamJob {
  const settings = { ...rawZoneSettings, ...deps.rawZone };
  const sinkOptions = {
    pathFormat: settings.pathFormat,
    flushSize: settings.flushSize,
    rotateIntervalMs: settings.rotateIntervalMs,
    idleMs: settings.idleMs,
  };
  const model = deps.sentiment ?? new VaderSentiment();
  const sync = model instanceof VaderSentiment ? model : null;
  const table = (name: string) => deps.lake.table(name);
  const deduplicated = stream(ingestJobName, {
    checkpointIntervalMs: deps.checkpointIntervalMs ?? 2_000,
  })
    .from<RawReview>(deps.log, { topics: [rawTopic], decode: decodeRawReview })
    .map(classify)
    .keyBy((routed) =>
      routed.kind === 'candidate'
        ? routed.review.review_id
        : `quarantine:${routed.raw.file}:${routed.raw.line}`,
    )
    .process<RoutedReview>((routed, ctx) => {
      if (routed.kind !== 'candidate') {
        ctx.emit(routed);
        return;
      }
      const seen = ctx.valueState<1>('seen');
      if (seen.get() === 1) {
        ctx.emit({ kind: 'duplicate', raw: routed.raw, review: routed.review });
        return;
      }
      seen.set(1);
      ctx.emit(routed);
    });
  const scoreSync = sync ? (text: string) => sync.scoreSync(text) : null;
  const withSentiment = scoreSync
    ? deduplicated.map((routed) => acceptReview(routed, scoreSync))
    : deduplicated.mapBatchAsync((batch) => scoreBatch(model, batch), {
        batchSizeMax: reviewLimits.sentimentBatchSizeMax,
      });
  const accepted = (r: RoutedReview): r is Extract<RoutedReview, { kind: 'accepted' }> =>
    r.kind === 'accepted';
  return withSentiment.to(
    lakeSink<RoutedReview>(
      lakeTableTarget(table(tables.bronze), { source: rawTopic, types: { source_line: 'INTEGER' } }),
      {
        ...sinkOptions,
        row: (r) => ({
          raw: r.raw.raw,
          source_file: r.raw.file,
          source_line: r.raw.line,
          outcome: r.kind,
        }),
      },
    ),
    sinkWhere(
      accepted,
      lakeSink<ScoredReview>(lakeTableTarget(table(tables.silver), { types: silverTypes }), {
        ...sinkOptions,
        row: silverRow,
      }),
      (r) => (r as Extract<RoutedReview, { kind: 'accepted' }>).review,
    ),
    sinkWhere(
      (r) => r.kind === 'quarantined',
      lakeSink<Extract<RoutedReview, { kind: 'quarantined' }>>(
        lakeTableTarget(table(tables.quarantine), {
          types: {
            source_file: 'VARCHAR',
            source_line: 'INTEGER',
            reason: 'VARCHAR',
            format: 'VARCHAR',
            raw: 'VARCHAR',
          },
        }),
        {
          ...sinkOptions,
          row: (r) => ({
            source_file: r.raw.file,
            source_line: r.raw.line,
            reason: r.reason,
            format: r.format,
            raw: r.raw.raw,
          }),
        },
      ),
      (r) => r as Extract<RoutedReview, { kind: 'quarantined' }>,
    ),
    sinkWhere(
      (r) => r.kind === 'duplicate',
      lakeSink<Extract<RoutedReview, { kind: 'duplicate' }>>(
        lakeTableTarget(table(tables.duplicates), {
          types: { review_id: 'VARCHAR', source_file: 'VARCHAR', source_line: 'INTEGER' },
        }),
        {
          ...sinkOptions,
          row: (r) => ({ review_id: r.review.review_id, source_file: r.raw.file, source_line: r.raw.line }),
        },
      ),
      (r) => r as Extract<RoutedReview, { kind: 'duplicate' }>,
    ),
    ...(deps.acceptedSinks ?? []).map((sink) =>
      sinkWhere(accepted, sink, (r) => (r as Extract<RoutedReview, { kind: 'accepted' }>).review),
    ),
  );
}
