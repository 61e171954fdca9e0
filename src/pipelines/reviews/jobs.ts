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

const utf8 = (bytes: Uint8Array | null | undefined) =>
  bytes === null || bytes === undefined
    ? undefined
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

/** Decodes a `reviews.raw` record with the spool's file, line and decode-error headers. */
export function decodeRawReview(record: LogRecord): RawReview {
  const decodeError = utf8(record.headers['tributary.decode-error']);
  return {
    raw: utf8(record.value) ?? '',
    file: utf8(record.headers['tributary.file']) ?? '',
    line: Number(utf8(record.headers['tributary.line']) ?? 0),
    ...(decodeError === undefined ? {} : { decodeError }),
  };
}

export function classify(raw: RawReview): RoutedReview {
  const result = normaliseReview(raw.raw, raw);
  if (result.ok) return { kind: 'candidate', raw, review: result.review };
  return { kind: 'quarantined', raw, reason: `${result.reason}: ${result.detail}`, format: result.format };
}

function scored(review: Review, sentiment: SentimentResult): ScoredReview {
  return {
    ...review,
    sentiment_score: sentiment.score,
    sentiment_label: sentiment.label,
    sentiment_confidence: sentiment.confidence,
  };
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
  const withSentiment = sync
    ? deduplicated.map((routed): RoutedReview =>
        routed.kind === 'candidate'
          ? {
              kind: 'accepted',
              raw: routed.raw,
              review: scored(routed.review, sync.scoreSync(routed.review.text)),
            }
          : routed,
      )
    : deduplicated.mapAsync(
        async (routed): Promise<RoutedReview> =>
          routed.kind === 'candidate'
            ? {
                kind: 'accepted',
                raw: routed.raw,
                review: scored(routed.review, await model.score(routed.review.text)),
              }
            : routed,
        { concurrency: 16 },
      );
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
        row: (review) => ({
          ...review,
          review_ts: review.review_ts === null ? null : new Date(review.review_ts),
        }),
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
