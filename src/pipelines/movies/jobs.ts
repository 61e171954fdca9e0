import type { Lake } from '../../lake/index.js';
import {
  AvroSerde,
  isConfluentWire,
  type Log,
  type LogRecord,
  type SchemaRegistry,
} from '../../log/index.js';
import { VaderSentiment, type SentimentModel } from '../../ml/index.js';
import { lakeSink, lakeTableTarget, sinkWhere, stream, type StreamJob } from '../../stream/index.js';
import { cleanCredits, cleanMovie, cleanPerson, cleanReview, cleanTrending } from './clean.js';
import { topics, type MoviesTopic } from './extract.js';

export const cleanJobName = 'movies.clean';

export const tables = {
  bronze: {
    movies: 'bronze.tmdb_movies',
    people: 'bronze.tmdb_people',
    credits: 'bronze.tmdb_credits',
    reviews: 'bronze.tmdb_reviews',
    trending: 'bronze.tmdb_trending',
  } satisfies Record<MoviesTopic, string>,
  /** Every cleaned fetch, appended by the stream job; silver keeps the latest per id. */
  movieVersions: 'silver.movie_versions',
  personVersions: 'silver.person_versions',
  creditVersions: 'silver.credit_versions',
  reviewVersions: 'silver.review_versions',
  /** Every fetch of the trending list, one row per ranked movie. */
  trendingVersions: 'silver.trending_versions',
  /** Bodies that are not a JSON object (the reason and the body). */
  rejects: 'silver.tmdb_rejects',
  movies: 'silver.movies',
  people: 'silver.people',
  credits: 'silver.movie_credits',
  reviews: 'silver.movie_reviews',
  movieSentiment: 'gold.movie_sentiment',
  trending: 'gold.trending',
  genreStats: 'gold.genre_stats',
  personFilmography: 'gold.person_filmography',
  /** One row per publish of the serving store (run id, time, rows): the API's cache key. */
  servingRuns: 'gold.movies_serving_runs',
} as const;

/** A record of one of the five topics as the cleaner sees it. */
export interface TmdbRecord {
  topic: string;
  key: string | null;
  /** The API body as JSON text (from the Avro value's `body` once decoded). */
  body: string;
  ingestedAtMs: number;
  /** An Avro value (Confluent wire format) still to decode. */
  framed?: Uint8Array;
  /** Why the value could not be decoded. */
  decodeError?: string;
}

/** One row for one table: the cleaner's output (a credits body gives many). */
export interface TableRow {
  table: string;
  row: Record<string, unknown>;
}

const utf8 = (bytes: Uint8Array | null | undefined) =>
  bytes === null || bytes === undefined
    ? null
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

export function decodeTmdbRecord(record: LogRecord): TmdbRecord {
  const framed = isConfluentWire(record.value);
  return {
    topic: record.topic,
    key: utf8(record.key),
    body: framed ? '' : (utf8(record.value) ?? ''),
    ingestedAtMs: record.timestamp,
    ...(framed ? { framed: record.value! } : {}),
  };
}

/** Decodes an Avro value (schema fetched from the registry once per id) into its `body`. */
function noRegistry(record: TmdbRecord): TmdbRecord {
  if (record.framed === undefined) return record;
  const { framed: _framed, ...rest } = record;
  return { ...rest, decodeError: 'an Avro value, but the job has no schema registry' };
}

async function decodeFramed(serde: AvroSerde, record: TmdbRecord): Promise<TmdbRecord> {
  if (record.framed === undefined) return record;
  const { framed, ...rest } = record;
  try {
    const value = (await serde.decodeAsync(framed)) as { body?: unknown };
    if (typeof value.body !== 'string') return { ...rest, decodeError: 'the Avro value has no body' };
    return { ...rest, body: value.body };
  } catch (error) {
    return { ...rest, decodeError: (error as Error).message };
  }
}

/**
 * Cleans one record: its raw body to bronze (`bronze.tmdb_<topic>`), its cleaned row(s) to the
 * topic's versions table, reviews scored for sentiment. A body that is not a JSON object goes to
 * `silver.tmdb_rejects` with the reason (in = bronze rows; versions + rejects account for each).
 */
export function cleanRecord(record: TmdbRecord, score: (text: string) => SentimentScore): TableRow[] {
  const topic = record.topic as MoviesTopic;
  const bronze: TableRow = {
    table: tables.bronze[topic],
    row: { tmdb_id: record.key, body: record.body, ingested_at: new Date(record.ingestedAtMs) },
  };
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    body = undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    const reason = record.decodeError ?? 'body is not a JSON object';
    return [
      bronze,
      { table: tables.rejects, row: { topic, tmdb_id: record.key, reason, body: record.body } },
    ];
  }
  const fields = body as Record<string, unknown>;
  switch (topic) {
    case topics.movies:
      return [bronze, { table: tables.movieVersions, row: { ...cleanMovie(fields, record.ingestedAtMs) } }];
    case topics.people:
      return [bronze, { table: tables.personVersions, row: { ...cleanPerson(fields, record.ingestedAtMs) } }];
    case topics.credits:
      return [
        bronze,
        ...cleanCredits(fields, record.ingestedAtMs).map((row) => ({
          table: tables.creditVersions,
          row: { ...row },
        })),
      ];
    case topics.trending:
      return [
        bronze,
        ...cleanTrending(fields, record.ingestedAtMs).map((row) => ({
          table: tables.trendingVersions,
          row: { ...row },
        })),
      ];
    case topics.reviews: {
      const review = cleanReview(fields, record.ingestedAtMs);
      const sentiment = review.content === null ? null : score(review.content);
      return [
        bronze,
        {
          table: tables.reviewVersions,
          row: {
            ...review,
            sentiment_score: sentiment?.score ?? null,
            sentiment_label: sentiment?.label ?? null,
            sentiment_confidence: sentiment?.confidence ?? null,
          },
        },
      ];
    }
    default:
      return [
        {
          table: tables.rejects,
          row: { topic, tmdb_id: record.key, reason: `unknown topic ${record.topic}`, body: record.body },
        },
      ];
  }
}

/** A review body's `content`, or null when the body is not JSON (the cleaner rejects it). */
function reviewContent(body: string): unknown {
  try {
    return (JSON.parse(body) as { content?: unknown } | null)?.content ?? null;
  } catch {
    return null;
  }
}

export interface SentimentScore {
  score: number;
  label: string;
  confidence: number;
}

const bronzeTypes = { tmdb_id: 'VARCHAR', body: 'VARCHAR', ingested_at: 'TIMESTAMP' };

/** DuckDB types of the tables the cleaner writes (nulls in a first batch need them). */
export const versionTypes: Record<string, Record<string, string>> = {
  [tables.movieVersions]: {
    movie_id: 'BIGINT',
    title: 'VARCHAR',
    original_title: 'VARCHAR',
    original_language: 'VARCHAR',
    overview: 'VARCHAR',
    release_date: 'DATE',
    release_year: 'INTEGER',
    genres: 'VARCHAR',
    runtime: 'INTEGER',
    budget: 'BIGINT',
    revenue: 'BIGINT',
    popularity: 'DOUBLE',
    vote_average: 'DOUBLE',
    vote_count: 'INTEGER',
    popularity_tier: 'VARCHAR',
    rating_tier: 'VARCHAR',
    updated_at: 'TIMESTAMP',
  },
  [tables.personVersions]: {
    person_id: 'BIGINT',
    name: 'VARCHAR',
    known_for_department: 'VARCHAR',
    birthday: 'DATE',
    place_of_birth: 'VARCHAR',
    popularity: 'DOUBLE',
    updated_at: 'TIMESTAMP',
  },
  [tables.creditVersions]: {
    movie_id: 'BIGINT',
    person_id: 'BIGINT',
    name: 'VARCHAR',
    role: 'VARCHAR',
    character: 'VARCHAR',
    job: 'VARCHAR',
    department: 'VARCHAR',
    billing_order: 'INTEGER',
    updated_at: 'TIMESTAMP',
  },
  [tables.reviewVersions]: {
    review_id: 'VARCHAR',
    movie_id: 'BIGINT',
    author: 'VARCHAR',
    author_rating: 'DOUBLE',
    content: 'VARCHAR',
    created_at: 'TIMESTAMP',
    updated_at: 'TIMESTAMP',
    sentiment_score: 'DOUBLE',
    sentiment_label: 'VARCHAR',
    sentiment_confidence: 'DOUBLE',
  },
  [tables.trendingVersions]: {
    date: 'DATE',
    time_window: 'VARCHAR',
    movie_id: 'BIGINT',
    title: 'VARCHAR',
    popularity: 'DOUBLE',
    rank: 'INTEGER',
    updated_at: 'TIMESTAMP',
  },
  [tables.rejects]: { topic: 'VARCHAR', tmdb_id: 'VARCHAR', reason: 'VARCHAR', body: 'VARCHAR' },
};

export interface MoviesJobDeps {
  log: Log;
  lake: Lake;
  /** Default the offline VADER model; another model scores asynchronously. */
  sentiment?: SentimentModel;
  /** Where Avro values' schemas are looked up (values may be Avro or JSON text). */
  schemaRegistry?: SchemaRegistry;
  checkpointIntervalMs?: number;
  /** Overrides for tests (roll sizes). */
  sink?: { flushSize?: number; rotateIntervalMs?: number; idleMs?: number };
}

/**
 * `movies.clean`: the five topics → raw bodies in bronze (by ingestion date) and cleaned,
 * sentiment-scored rows in the versions tables, all committed with the job's checkpoints (a replay
 * after a crash neither loses nor repeats a row). `movies.gold` then keeps the latest per id.
 */
export function moviesCleanJob(deps: MoviesJobDeps): StreamJob {
  const sinkOptions = {
    pathFormat: "'ingest_date'=YYYY-MM-dd",
    flushSize: deps.sink?.flushSize ?? 10_000,
    rotateIntervalMs: deps.sink?.rotateIntervalMs ?? 600_000,
    idleMs: deps.sink?.idleMs ?? 2_000,
  };
  const model = deps.sentiment ?? new VaderSentiment();
  const sync = model instanceof VaderSentiment ? model : null;
  const serde = deps.schemaRegistry === undefined ? null : new AvroSerde(deps.schemaRegistry);
  const raw = stream(cleanJobName, {
    checkpointIntervalMs: deps.checkpointIntervalMs ?? 2_000,
  }).from<TmdbRecord>(deps.log, { topics: Object.values(topics), decode: decodeTmdbRecord });
  const source =
    serde === null
      ? raw.map((record) => noRegistry(record))
      : raw.mapAsync((record) => decodeFramed(serde, record), { concurrency: 16 });
  const cleaned = sync
    ? source.flatMap((record) => cleanRecord(record, (content) => sync.scoreSync(content)))
    : source
        .mapAsync(
          async (record) => {
            // Score first (the model is asynchronous), then clean with the ready score.
            const content = record.topic === topics.reviews ? reviewContent(record.body) : null;
            const ready =
              typeof content === 'string' && content.trim() !== '' ? await model.score(content.trim()) : null;
            return cleanRecord(record, () => ready!);
          },
          { concurrency: 16 },
        )
        .flatMap((rows) => rows);
  const sinkFor = (table: string, types: Record<string, string>) =>
    sinkWhere(
      (out: TableRow) => out.table === table,
      lakeSink<TableRow>(lakeTableTarget(deps.lake.table(table), { types }), {
        ...sinkOptions,
        row: (out) => out.row,
      }),
    );
  return cleaned.to(
    ...Object.values(tables.bronze).map((table) => sinkFor(table, bronzeTypes)),
    ...Object.entries(versionTypes).map(([table, types]) => sinkFor(table, types)),
  );
}
