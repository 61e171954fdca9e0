import { createPostgresUpsertSink, openPgClient, type PgClient } from '../../connectors/index.js';
import type { Lake } from '../../lake/index.js';
import type { QueryFunction } from '../types.js';
import { tables } from './jobs.js';

/**
 * The serving store: gold and silver pre-joined into PostgreSQL for the API's reads (the seed used
 * MongoDB; no MongoDB server runs here, so none is written to: another store would plug in as
 * another `publish` behind the same `rows` reads). Embedded PGlite under the data dir by default,
 * a real server with `MOVIES_SERVING_URL`. Every table is written by the platform's upsert sink,
 * keyed by the TMDB id, with the run's checkpoint id committed in the same transaction: a
 * repeated publish changes nothing, a crashed one is redone whole.
 */
export const servingSchema = 'movies_serving';

interface ServingTable {
  name: string;
  keyColumns: string[];
  /** Column → PostgreSQL type, in order. */
  columns: Record<string, string>;
  indexes: string[];
  /** The lake SELECT producing its rows, columns named as above, values as text or numbers. */
  select: string;
}

const servingTables: ServingTable[] = [
  {
    name: 'movies',
    keyColumns: ['movie_id'],
    columns: {
      movie_id: 'integer',
      title: 'text',
      original_title: 'text',
      original_language: 'text',
      overview: 'text',
      release_date: 'date',
      release_year: 'integer',
      genres: 'jsonb',
      runtime: 'integer',
      budget: 'bigint',
      revenue: 'bigint',
      popularity: 'double precision',
      vote_average: 'double precision',
      vote_count: 'integer',
      popularity_tier: 'text',
      rating_tier: 'text',
      quality_flags: 'jsonb',
      reviews: 'integer',
      avg_sentiment: 'double precision',
      positive: 'integer',
      neutral: 'integer',
      negative: 'integer',
      avg_author_rating: 'double precision',
      updated_at: 'timestamptz',
    },
    indexes: ['release_year', 'popularity_tier', 'rating_tier', 'vote_count', 'popularity'],
    select: `SELECT CAST(m.movie_id AS INTEGER) AS movie_id, m.title, m.original_title, m.original_language, m.overview,
                    CAST(m.release_date AS VARCHAR) AS release_date, m.release_year, CAST(to_json(m.genres) AS VARCHAR) AS genres,
                    m.runtime, CAST(m.budget AS DOUBLE) AS budget, CAST(m.revenue AS DOUBLE) AS revenue, m.popularity,
                    m.vote_average, m.vote_count, m.popularity_tier, m.rating_tier,
                    CAST(to_json(m.quality_flags) AS VARCHAR) AS quality_flags, CAST(s.reviews AS INTEGER) AS reviews,
                    s.avg_sentiment, CAST(s.positive AS INTEGER) AS positive, CAST(s.neutral AS INTEGER) AS neutral,
                    CAST(s.negative AS INTEGER) AS negative, s.avg_author_rating,
                    strftime(m.updated_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS updated_at
             FROM ${tables.movies} m JOIN ${tables.movieSentiment} s USING (movie_id)`,
  },
  {
    name: 'people',
    keyColumns: ['person_id'],
    columns: {
      person_id: 'integer',
      name: 'text',
      known_for_department: 'text',
      birthday: 'date',
      place_of_birth: 'text',
      popularity: 'double precision',
      movies: 'integer',
      avg_vote: 'double precision',
    },
    indexes: [],
    select: `SELECT CAST(f.person_id AS INTEGER) AS person_id, coalesce(p.name, f.name) AS name, p.known_for_department,
                    CAST(p.birthday AS VARCHAR) AS birthday, p.place_of_birth, p.popularity,
                    CAST(f.movies AS INTEGER) AS movies, f.avg_vote
             FROM ${tables.personFilmography} f LEFT JOIN ${tables.people} p USING (person_id)`,
  },
  {
    name: 'credits',
    keyColumns: ['movie_id', 'person_id', 'role', 'job'],
    columns: {
      movie_id: 'integer',
      person_id: 'integer',
      role: 'text',
      job: 'text',
      name: 'text',
      character: 'text',
      department: 'text',
      billing_order: 'integer',
    },
    indexes: ['person_id'],
    // Cast credits have no job: '' keeps them in the key.
    select: `SELECT DISTINCT ON (movie_id, person_id, role, coalesce(job, ''))
                    CAST(movie_id AS INTEGER) AS movie_id, CAST(person_id AS INTEGER) AS person_id, role,
                    coalesce(job, '') AS job, name, character, department, billing_order
             FROM ${tables.credits}`,
  },
  {
    name: 'reviews',
    keyColumns: ['review_id'],
    columns: {
      review_id: 'text',
      movie_id: 'integer',
      author: 'text',
      author_rating: 'double precision',
      content: 'text',
      created_at: 'timestamptz',
      sentiment_score: 'double precision',
      sentiment_label: 'text',
      sentiment_confidence: 'double precision',
    },
    indexes: ['movie_id'],
    select: `SELECT review_id, CAST(movie_id AS INTEGER) AS movie_id, author, author_rating, content,
                    strftime(created_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS created_at, sentiment_score, sentiment_label,
                    sentiment_confidence
             FROM ${tables.reviews}`,
  },
  {
    name: 'trending',
    keyColumns: ['date', 'movie_id'],
    columns: {
      date: 'date',
      movie_id: 'integer',
      title: 'text',
      popularity: 'double precision',
      rank: 'integer',
    },
    indexes: ['date'],
    select: `SELECT CAST(date AS VARCHAR) AS date, CAST(movie_id AS INTEGER) AS movie_id, title, popularity, rank
             FROM ${tables.trending}`,
  },
  {
    name: 'genres',
    keyColumns: ['genre'],
    columns: {
      genre: 'text',
      movies: 'integer',
      avg_vote: 'double precision',
      avg_popularity: 'double precision',
      avg_sentiment: 'double precision',
    },
    indexes: [],
    select: `SELECT genre, CAST(movies AS INTEGER) AS movies, avg_vote, avg_popularity, avg_sentiment FROM ${tables.genreStats}`,
  },
];

export interface ServingStoreOptions {
  /** A PostgreSQL URL; without one, embedded PGlite in `pgliteDir` (in memory without that too). */
  url?: string;
  pgliteDir?: string;
  /** Default `movies_serving` (tests give each run its own). */
  schema?: string;
}

export class MoviesServingStore {
  readonly schema: string;
  readonly #client: PgClient;

  private constructor(client: PgClient, schema: string) {
    this.#client = client;
    this.schema = schema;
  }

  static async open(options: ServingStoreOptions = {}): Promise<MoviesServingStore> {
    const client = await openPgClient({ url: options.url, pgliteDir: options.pgliteDir });
    const store = new MoviesServingStore(client, options.schema ?? servingSchema);
    try {
      await store.#ensureSchema();
    } catch (error) {
      await client.close();
      throw error;
    }
    return store;
  }

  table(name: string): string {
    return `${this.schema}.${name}`;
  }

  async #ensureSchema(): Promise<void> {
    await this.#client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
    for (const table of servingTables) {
      const columns = Object.entries(table.columns).map(([name, type]) => `"${name}" ${type}`);
      await this.#client.query(
        `CREATE TABLE IF NOT EXISTS ${this.table(table.name)} (${columns.join(', ')}, PRIMARY KEY (${table.keyColumns.join(', ')}))`,
      );
      for (const column of table.indexes) {
        await this.#client.query(
          `CREATE INDEX IF NOT EXISTS ${table.name}_${column}_idx ON ${this.table(table.name)} ("${column}")`,
        );
      }
    }
    await this.#client.query(
      `CREATE INDEX IF NOT EXISTS movies_genres_idx ON ${this.table('movies')} USING gin (genres)`,
    );
  }

  /**
   * Upserts every serving table from the lake. `checkpointId` grows with each publish (the run's
   * time); a publish of an id already committed is skipped by the sink. Returns rows written.
   */
  async publish(query: QueryFunction, checkpointId: number): Promise<number> {
    let rows = 0;
    for (const table of servingTables) {
      const sink = createPostgresUpsertSink(
        {
          table: this.table(table.name),
          keyColumns: table.keyColumns,
          columns: Object.keys(table.columns),
          sinkId: `movies.serving/${this.schema}.${table.name}`,
        },
        { client: this.#client },
      );
      sink.add(await query(table.select));
      const result = await sink.flush(checkpointId);
      rows += result.rows;
    }
    return rows;
  }

  /** Rows of a SELECT as plain JSON objects (numbers as numbers, jsonb as lists). */
  async rows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    const result = await this.#client.query(`SELECT row_to_json(r)::text FROM (${sql}) r`, params);
    return result.rows.map((row) => JSON.parse(String(row[0])) as Record<string, unknown>);
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/**
 * After a gold rebuild: upserts the serving store, then commits one row to
 * `gold.movies_serving_runs`. The API caches its answers on that table, so they are dropped only
 * once the store holds the new gold (never between a gold commit and the publish). Returns the
 * rows upserted.
 */
export async function publishServingStore(
  store: MoviesServingStore,
  lake: Lake,
  query: QueryFunction,
  runId: string,
  publishedAtMs: number = Date.now(),
): Promise<number> {
  const rows = await store.publish(query, publishedAtMs);
  await lake
    .table(tables.servingRuns)
    .overwrite([{ run_id: runId, published_at: new Date(publishedAtMs), rows }], {
      commitId: `${runId}:serving`,
    });
  return rows;
}
