import type { Lake } from '../../lake/index.js';
import { writeCheckedQuery, type BatchJob, type QualityRule } from '../../stream/index.js';
import type { QueryFunction } from '../types.js';
import { rebuildTables, type RebuildQuery } from '../tables.js';
import { tables, versionTypes } from './jobs.js';

/**
 * `silver.movies`'s rules. A record without an id or a title is quarantined
 * (`silver.movies_quarantine`); the others are kept and flagged (`quality_flags`, empty when clean).
 * The cleaner has turned TMDB's empty strings into nulls, so `not_null` also catches `""`.
 */
export const movieRules: readonly QualityRule[] = [
  { name: 'missing_id', expect: 'not_null', column: 'movie_id', action: 'quarantine' },
  { name: 'missing_title', expect: 'not_null', column: 'title', action: 'quarantine' },
  { name: 'missing_overview', expect: 'not_null', column: 'overview', action: 'flag' },
  { name: 'missing_release_date', expect: 'not_null', column: 'release_date', action: 'flag' },
  {
    name: 'future_release',
    expect: 'sql',
    predicate: 'release_date IS NULL OR release_date <= current_date',
    action: 'flag',
  },
  { name: 'zero_votes', expect: 'range', column: 'vote_count', min: 1, action: 'flag' },
  // A feature film runs 1 to 1000 minutes; TMDB sends 0 (or nothing) when it does not know.
  { name: 'invalid_runtime', expect: 'range', column: 'runtime', min: 1, max: 1000, action: 'flag' },
];

/** Movies ranked per day in `gold.trending` (TMDB's first page of the trending list). */
export const trendingRanks = 20;

/** A versions table, or while nothing has arrived on its topic, an empty relation of its columns. */
type From = (table: string) => string;

/** The latest fetch of each id wins. */
const latest = (from: string, key: string) =>
  `SELECT * EXCLUDE (place) FROM (
     SELECT *, row_number() OVER (PARTITION BY ${key} ORDER BY updated_at DESC) AS place FROM ${from}
     WHERE ${key} IS NOT NULL)
   WHERE place = 1`;

/** silver.movies input: latest per movie_id, genres as a list; rows without an id pass to the rules. */
const moviesInput = (
  from: From,
) => `SELECT movie_id, title, original_title, original_language, overview, release_date, release_year,
    CAST(json_extract_string(genres, '$[*]') AS VARCHAR[]) AS genres, runtime, budget, revenue, popularity,
    vote_average, vote_count, popularity_tier, rating_tier, updated_at
  FROM (${latest(from(tables.movieVersions), 'movie_id')}
        UNION ALL BY NAME
        SELECT * FROM ${from(tables.movieVersions)} WHERE movie_id IS NULL)`;

/** The derived silver and gold tables, in order (each reads the ones before). */
export const derivedQueries = (from: From): RebuildQuery[] => [
  { table: tables.people, sql: `SELECT * FROM (${latest(from(tables.personVersions), 'person_id')})` },
  {
    table: tables.credits,
    // The credits of a movie's latest credits fetch (a refresh replaces the list, not merges it).
    sql: `SELECT c.movie_id, c.person_id, c.name, c.role, c.character, c.job, c.department, c.billing_order
          FROM ${from(tables.creditVersions)} c
          JOIN (SELECT movie_id, max(updated_at) AS fetched FROM ${from(tables.creditVersions)} GROUP BY movie_id) l
            ON l.movie_id = c.movie_id AND l.fetched = c.updated_at
          JOIN ${tables.movies} m ON m.movie_id = c.movie_id`,
  },
  {
    table: tables.reviews,
    sql: `SELECT review_id, movie_id, author, author_rating, content, created_at, sentiment_score, sentiment_label,
                 sentiment_confidence
          FROM (${latest(from(tables.reviewVersions), 'review_id')})
          WHERE movie_id IN (SELECT movie_id FROM ${tables.movies})`,
  },
  {
    table: tables.movieSentiment,
    // Every movie has a row: 0 reviews (and null averages) where it has none.
    sql: `SELECT m.movie_id, m.title, count(r.review_id) AS reviews, avg(r.sentiment_score) AS avg_sentiment,
                 count(*) FILTER (WHERE r.sentiment_label = 'positive') AS positive,
                 count(*) FILTER (WHERE r.sentiment_label = 'neutral') AS neutral,
                 count(*) FILTER (WHERE r.sentiment_label = 'negative') AS negative,
                 avg(r.author_rating) AS avg_author_rating
          FROM ${tables.movies} m LEFT JOIN ${tables.reviews} r ON r.movie_id = m.movie_id
          GROUP BY m.movie_id, m.title`,
  },
  {
    table: tables.trending,
    // Per day, TMDB's trending list as last fetched that day, in TMDB's order; the title from
    // silver.movies where the movie is there (the list's own otherwise).
    sql: `SELECT t.date, t.movie_id, coalesce(m.title, t.title) AS title, t.popularity, t.rank
          FROM ${from(tables.trendingVersions)} t
          JOIN (SELECT date, max(updated_at) AS fetched FROM ${from(tables.trendingVersions)} GROUP BY date) l
            ON l.date = t.date AND l.fetched = t.updated_at
          LEFT JOIN ${tables.movies} m ON m.movie_id = t.movie_id
          WHERE t.rank <= ${trendingRanks}`,
  },
  {
    table: tables.genreStats,
    sql: `SELECT genre, count(*) AS movies, avg(m.vote_average) FILTER (WHERE m.vote_count > 0) AS avg_vote,
                 avg(m.popularity) AS avg_popularity, avg(s.avg_sentiment) AS avg_sentiment
          FROM (SELECT *, unnest(genres) AS genre FROM ${tables.movies}) m
          JOIN ${tables.movieSentiment} s USING (movie_id)
          GROUP BY genre`,
  },
  {
    table: tables.personFilmography,
    // Everyone credited; the name from the person record when fetched, else the credit's.
    sql: `SELECT c.person_id, coalesce(any_value(p.name), arg_max(c.name, m.popularity)) AS name,
                 count(DISTINCT c.movie_id) AS movies,
                 avg(m.vote_average) FILTER (WHERE m.vote_count > 0) AS avg_vote
          FROM ${tables.credits} c
          JOIN ${tables.movies} m USING (movie_id)
          LEFT JOIN ${tables.people} p USING (person_id)
          GROUP BY c.person_id`,
  },
];

export const goldJobName = 'movies.gold';

/**
 * Rebuilds silver (latest per id, rules on movies) and gold from the versions tables, one commit
 * per table; nothing before the first movie arrives. Returns rows written.
 */
export async function refreshMoviesSilverGold(
  lake: Lake,
  query: QueryFunction,
  runId: string,
): Promise<number> {
  if ((await lake.table(tables.movieVersions).snapshot()) === null) return 0;
  const present = new Set<string>();
  for (const table of Object.keys(versionTypes))
    if ((await lake.table(table).snapshot()) !== null) present.add(table);
  const from: From = (table) =>
    present.has(table)
      ? table
      : `(SELECT ${Object.entries(versionTypes[table])
          .map(([column, type]) => `CAST(NULL AS ${type}) AS ${column}`)
          .join(', ')} WHERE false)`;
  const report = await writeCheckedQuery({
    lake,
    query: (sql) => query(sql),
    table: tables.movies,
    rules: movieRules,
    input: moviesInput(from),
    runId: `${runId}:${tables.movies}`,
    mode: 'overwrite',
  });
  return report.rowsPassed + report.rowsFlagged + (await rebuildTables(lake, derivedQueries(from), runId));
}

/** The silver + gold step: after the cleaner's commits under `up` (debounced), and hourly. */
export function moviesGoldJob(deps: {
  lake: Lake;
  query: QueryFunction;
  /** After gold is written: the serving store's refresh. */
  afterRefresh?: (runId: string) => Promise<void>;
}): BatchJob {
  return {
    name: goldJobName,
    description:
      'silver.movies (latest wins, tiers, quality flags), people, credits, reviews; gold sentiment, trending, genres, filmographies',
    inputs: [
      tables.movieVersions,
      tables.personVersions,
      tables.creditVersions,
      tables.reviewVersions,
      tables.trendingVersions,
    ],
    outputs: [tables.movies, ...derivedQueries(() => '').map((q) => q.table), tables.servingRuns],
    schedule: '17 * * * *',
    partitionFor: () => null,
    onInputCommit: { debounceMs: 2_000 },
    run: async (ctx) => {
      const rowsOut = await refreshMoviesSilverGold(deps.lake, deps.query, ctx.commitId);
      if (rowsOut > 0) await deps.afterRefresh?.(ctx.commitId);
      return { rowsOut };
    },
  };
}
