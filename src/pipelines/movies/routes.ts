import { z } from 'zod';
import { TributaryError } from '../../core/index.js';
import type { DashboardPage, DetailSpec, PipelineModule } from '../../serve/index.js';
import { popularityTiers, ratingTiers } from './clean.js';
import type { ExtractionStats } from './extract.js';
import { tables } from './jobs.js';
import type { MoviesServingStore } from './serving.js';
import { rowsResponse } from '../tables.js';

const popularityTierNames = popularityTiers.map((t) => t.tier) as [string, ...string[]];
const ratingTierNames: [string, ...string[]] = ['unrated', ...ratingTiers.map((t) => t.tier)];

/** Filters and paging of `GET /api/movies`. */
export const movieFilters = z.object({
  genre: z.string().min(1).max(100).optional(),
  popularity_tier: z.enum(popularityTierNames).optional(),
  rating_tier: z.enum(ratingTierNames).optional(),
  year_from: z.coerce.number().int().min(1870).max(2200).optional(),
  year_to: z.coerce.number().int().min(1870).max(2200).optional(),
  min_votes: z.coerce.number().int().min(0).optional(),
  /** Only movies with at least this many reviews (the sentiment chart asks for 1). */
  min_reviews: z.coerce.number().int().min(0).optional(),
  sort: z
    .enum(['popularity', 'vote_average', 'release_date', 'title', 'avg_sentiment'])
    .default('popularity'),
  order: z.enum(['asc', 'desc']).default('desc'),
  limit: z.coerce.number().int().min(1).max(200).default(20),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
});

const movieColumns = `movie_id, title, original_language, release_date, release_year, genres, runtime, popularity,
  vote_average, vote_count, popularity_tier, rating_tier, quality_flags, reviews, avg_sentiment`;

/** A movie's detail view on the page: opened from the trending and movies tables. */
const movieDetail: DetailSpec = {
  param: 'movie',
  key: 'movie_id',
  route: '/api/movies/{movie_id}',
  titleField: 'title',
  fields: [
    { label: 'Released', field: 'release_date', format: 'text' },
    { label: 'Genres', field: 'genres' },
    { label: 'Runtime (min)', field: 'runtime', format: 'integer' },
    { label: 'Popularity tier', field: 'popularity_tier', format: 'text' },
    { label: 'Rating tier', field: 'rating_tier', format: 'text' },
    { label: 'Vote average', field: 'vote_average' },
    { label: 'Votes', field: 'vote_count', format: 'integer' },
    { label: 'Quality flags', field: 'quality_flags' },
    { label: 'Reviews', field: 'sentiment.reviews', format: 'integer' },
    { label: 'Average sentiment', field: 'sentiment.avg_sentiment' },
    { label: 'Positive reviews', field: 'sentiment.positive', format: 'integer' },
    { label: 'Neutral reviews', field: 'sentiment.neutral', format: 'integer' },
    { label: 'Negative reviews', field: 'sentiment.negative', format: 'integer' },
    { label: 'Average author rating', field: 'sentiment.avg_author_rating' },
  ],
  lists: [
    { title: 'Top cast', field: 'cast', columns: ['name', 'character', 'billing_order'] },
    { title: 'Directors', field: 'directors', columns: ['name'] },
    {
      title: 'Reviews',
      route: '/api/movies/{movie_id}/reviews?limit=20',
      columns: ['created_at', 'author', 'author_rating', 'sentiment_label', 'sentiment_score', 'content'],
    },
  ],
};

export const page: DashboardPage = {
  id: 'movies',
  title: 'Movies',
  description:
    'TMDB (4 req/s) → movies, people, credits, reviews, trending → cleaner + sentiment → silver / gold → serving store. Click a title for its cast, directors and reviews.',
  filters: [
    {
      id: 'genre',
      label: 'Genre',
      kind: 'select',
      options: { route: '/api/genres', field: 'genre' },
      appliesTo: ['movies', 'sentiment'],
    },
    {
      id: 'popularity_tier',
      label: 'Popularity tier',
      kind: 'select',
      options: popularityTierNames,
      appliesTo: ['movies', 'sentiment'],
    },
    {
      id: 'rating_tier',
      label: 'Rating tier',
      kind: 'select',
      options: ratingTierNames,
      appliesTo: ['movies', 'sentiment'],
    },
    {
      id: 'year',
      label: 'Release year',
      kind: 'numberRange',
      params: { from: 'year_from', to: 'year_to' },
      min: 1870,
      max: 2200,
      appliesTo: ['movies', 'sentiment'],
    },
  ],
  tiles: [
    {
      id: 'movies',
      label: 'Movies',
      source: { route: '/api/movies/summary', field: 'movies' },
      format: 'integer',
    },
    {
      id: 'reviews',
      label: 'Reviews',
      source: { route: '/api/movies/summary', field: 'reviews' },
      format: 'integer',
    },
    {
      id: 'sentiment',
      label: 'Average review sentiment',
      source: { route: '/api/movies/summary', field: 'avg_sentiment' },
      format: 'number',
    },
    {
      id: 'requests',
      label: 'TMDB requests, last extraction',
      source: { route: '/api/movies/extraction', field: 'requests' },
      format: 'integer',
    },
  ],
  charts: [
    {
      id: 'sentiment',
      title: 'Average review sentiment of the 20 most popular movies (filtered)',
      kind: 'bar',
      route: '/api/movies?limit=20&min_reviews=1',
      rowsField: 'rows',
      x: 'title',
      y: 'avg_sentiment',
      format: 'number',
    },
    {
      id: 'genres',
      title: 'Movies per genre',
      kind: 'bar',
      route: '/api/genres',
      rowsField: 'rows',
      x: 'genre',
      y: 'movies',
      format: 'integer',
    },
    {
      id: 'genre-sentiment',
      title: 'Average sentiment per genre',
      kind: 'bar',
      route: '/api/genres',
      rowsField: 'rows',
      x: 'genre',
      y: 'avg_sentiment',
      format: 'number',
    },
    {
      id: 'tiers',
      title: 'Movies per popularity tier',
      kind: 'bar',
      route: '/api/movies/tiers',
      rowsField: 'rows',
      x: 'popularity_tier',
      y: 'movies',
      format: 'integer',
    },
  ],
  tables: [
    {
      id: 'trending',
      title: "Trending today (TMDB's list)",
      route: '/api/movies/trending',
      columns: ['title', 'rank', 'popularity'],
      detail: movieDetail,
    },
    {
      id: 'movies',
      title: 'Movies (sentiment by movie)',
      route: '/api/movies?limit=20',
      columns: [
        'title',
        'release_date',
        'genres',
        'popularity_tier',
        'rating_tier',
        'reviews',
        'avg_sentiment',
        'quality_flags',
      ],
      detail: movieDetail,
    },
  ],
};

export interface MoviesRoutesDeps {
  /** The serving store, opened on first use. */
  store: () => Promise<MoviesServingStore>;
  /** The last extraction's statistics (null before one ran in this process). */
  extraction: () => ExtractionStats | null;
}

const id = z.object({ id: z.coerce.number().int().min(1) });
/**
 * Answers come from the serving store, which changes when it is published after a gold rebuild;
 * each publish then commits `gold.movies_serving_runs`, whose commit invalidates these answers
 * (caching on the gold tables themselves would let a read between a gold commit and the publish
 * keep the old answer under the new generation).
 */
const goldCache = { tables: [tables.servingRuns] };

/** `GET /api/movies`: one page of movies and how many match. */
const moviesPageResponse = {
  200: {
    description: 'one page of the matching movies, sorted; total = how many match',
    schema: z.object({
      total: z.number().int(),
      limit: z.number().int(),
      offset: z.number().int(),
      rows: z.array(z.record(z.string(), z.unknown())),
    }),
  },
  400: { description: 'a filter out of range (year_from after year_to, an unknown tier)' },
};

/** `/api/movies…`, `/api/people/{id}`, `/api/genres` (read scope, cached) and the Movies page. */
export function moviesModule(deps: MoviesRoutesDeps): PipelineModule {
  return {
    name: 'movies',
    title: 'Movies',
    description: 'TMDB movies, people, credits and reviews with sentiment, tiers, trending and genres',
    page,
    routes(api) {
      api.route({
        method: 'get',
        path: '/api/movies/trending',
        summary: "The latest day's most popular movies (gold.trending), ranked",
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        responses: rowsResponse,
        handler: async () => {
          const store = await deps.store();
          return {
            rows: await store.rows(
              `SELECT to_char(date, 'YYYY-MM-DD') AS date, movie_id, title, popularity, rank FROM ${store.table('trending')}
               WHERE date = (SELECT max(date) FROM ${store.table('trending')}) ORDER BY rank`,
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/movies/summary',
        summary: 'Movies, reviews and average sentiment in the serving store',
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        responses: { 200: { description: 'movies, reviews, avg_sentiment' } },
        handler: async () => {
          const store = await deps.store();
          const [row] = await store.rows(
            `SELECT count(*)::int AS movies, coalesce(sum(reviews), 0)::int AS reviews,
                    (SELECT avg(sentiment_score) FROM ${store.table('reviews')}) AS avg_sentiment
             FROM ${store.table('movies')}`,
          );
          return row;
        },
      });
      api.route({
        method: 'get',
        path: '/api/movies/tiers',
        summary: 'Movies per popularity tier and per rating tier',
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        responses: rowsResponse,
        handler: async () => {
          const store = await deps.store();
          return {
            rows: await store.rows(
              `SELECT popularity_tier, count(*)::int AS movies FROM ${store.table('movies')} GROUP BY 1 ORDER BY 2 DESC`,
            ),
            rating: await store.rows(
              `SELECT rating_tier, count(*)::int AS movies FROM ${store.table('movies')} GROUP BY 1 ORDER BY 2 DESC`,
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/movies/extraction',
        summary:
          'Statistics of the last TMDB extraction in this process (requests, retries, 429s, records, seconds)',
        tags: ['movies'],
        scope: 'read',
        responses: { 200: { description: 'extraction statistics, or { ran: false }' } },
        handler: () => Promise.resolve(deps.extraction() ?? { ran: false }),
      });
      api.route({
        method: 'get',
        path: '/api/movies',
        summary: 'Movies filtered by genre, tiers, release years and minimum votes; sorted and paged',
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        query: movieFilters,
        responses: moviesPageResponse,
        handler: async ({ query }) => {
          const store = await deps.store();
          const clauses: string[] = [];
          const params: unknown[] = [];
          const add = (clause: string, value: unknown) => {
            params.push(value);
            clauses.push(clause.replace('?', `$${params.length}`));
          };
          if (query.genre) add('genres @> jsonb_build_array(CAST(? AS text))', query.genre);
          if (query.popularity_tier) add('popularity_tier = ?', query.popularity_tier);
          if (query.rating_tier) add('rating_tier = ?', query.rating_tier);
          if (query.year_from !== undefined) add('release_year >= ?', query.year_from);
          if (query.year_to !== undefined) add('release_year <= ?', query.year_to);
          if (query.min_votes !== undefined) add('vote_count >= ?', query.min_votes);
          if (query.min_reviews !== undefined) add('reviews >= ?', query.min_reviews);
          if (query.year_from !== undefined && query.year_to !== undefined && query.year_from > query.year_to)
            throw new TributaryError(
              'INVALID_ARGUMENT',
              `year_from ${query.year_from} is after year_to ${query.year_to}`,
            );
          const where = clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;
          const [{ total }] = (await store.rows(
            `SELECT count(*)::int AS total FROM ${store.table('movies')} ${where}`,
            [...params],
          )) as [{ total: number }];
          params.push(query.limit, query.offset);
          return {
            total,
            limit: query.limit,
            offset: query.offset,
            rows: await store.rows(
              `SELECT ${movieColumns.replace('release_date', "to_char(release_date, 'YYYY-MM-DD') AS release_date")}
               FROM ${store.table('movies')} ${where}
               ORDER BY ${query.sort} ${query.order} NULLS LAST, movie_id
               LIMIT $${params.length - 1} OFFSET $${params.length}`,
              params,
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/movies/:id',
        summary:
          'One movie: details, genres, tiers, quality flags, top cast with characters, directors, sentiment',
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        params: id,
        responses: { 200: { description: 'movie' }, 404: { description: 'no movie with this TMDB id' } },
        handler: async ({ params }) => {
          const store = await deps.store();
          const [movie] = await store.rows(
            `SELECT *, to_char(release_date, 'YYYY-MM-DD') AS release_date FROM ${store.table('movies')} WHERE movie_id = $1`,
            [params.id],
          );
          if (movie === undefined)
            throw new TributaryError('NOT_FOUND', `no movie with TMDB id ${params.id}`);
          const credits = store.table('credits');
          const people = store.table('people');
          const cast = await store.rows(
            `SELECT c.person_id, coalesce(p.name, c.name) AS name, c.character, c.billing_order
             FROM ${credits} c LEFT JOIN ${people} p USING (person_id)
             WHERE c.movie_id = $1 AND c.role = 'cast' ORDER BY c.billing_order NULLS LAST LIMIT 10`,
            [params.id],
          );
          const directors = await store.rows(
            `SELECT c.person_id, coalesce(p.name, c.name) AS name FROM ${credits} c LEFT JOIN ${people} p USING (person_id)
             WHERE c.movie_id = $1 AND c.role = 'crew' AND c.job = 'Director' ORDER BY c.person_id`,
            [params.id],
          );
          const { reviews, avg_sentiment, positive, neutral, negative, avg_author_rating, ...details } =
            movie;
          return {
            ...details,
            cast,
            directors,
            sentiment: { reviews, avg_sentiment, positive, neutral, negative, avg_author_rating },
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/movies/:id/reviews',
        summary: "A movie's reviews with sentiment score, label and confidence, newest first",
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        params: id,
        query: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(20),
          offset: z.coerce.number().int().min(0).default(0),
        }),
        responses: { ...rowsResponse, 404: { description: 'no movie with this TMDB id' } },
        handler: async ({ params, query }) => {
          const store = await deps.store();
          const known = await store.rows(`SELECT 1 FROM ${store.table('movies')} WHERE movie_id = $1`, [
            params.id,
          ]);
          if (known.length === 0) throw new TributaryError('NOT_FOUND', `no movie with TMDB id ${params.id}`);
          return {
            rows: await store.rows(
              `SELECT review_id, author, author_rating, content, created_at, sentiment_score, sentiment_label, sentiment_confidence
               FROM ${store.table('reviews')} WHERE movie_id = $1 ORDER BY created_at DESC NULLS LAST, review_id
               LIMIT $2 OFFSET $3`,
              [params.id, query.limit, query.offset],
            ),
          };
        },
      });
      api.route({
        method: 'get',
        path: '/api/people/:id',
        summary:
          'One person (fetched: first five billed cast and directors; others by their credit name) and filmography',
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        params: id,
        responses: {
          200: { description: 'person and filmography' },
          404: { description: 'no person with this TMDB id' },
        },
        handler: async ({ params }) => {
          const store = await deps.store();
          const [person] = await store.rows(
            `SELECT *, to_char(birthday, 'YYYY-MM-DD') AS birthday FROM ${store.table('people')} WHERE person_id = $1`,
            [params.id],
          );
          if (person === undefined)
            throw new TributaryError('NOT_FOUND', `no person with TMDB id ${params.id}`);
          const filmography = await store.rows(
            `SELECT m.movie_id, m.title, m.release_year, c.role, c.character, c.job, m.vote_average
             FROM ${store.table('credits')} c JOIN ${store.table('movies')} m USING (movie_id)
             WHERE c.person_id = $1 ORDER BY m.release_year DESC NULLS LAST, m.movie_id`,
            [params.id],
          );
          return { ...person, filmography };
        },
      });
      api.route({
        method: 'get',
        path: '/api/genres',
        summary: 'Per genre: movies, average vote, average popularity and average review sentiment',
        tags: ['movies'],
        scope: 'read',
        cache: goldCache,
        responses: rowsResponse,
        handler: async () => {
          const store = await deps.store();
          return {
            rows: await store.rows(`SELECT * FROM ${store.table('genres')} ORDER BY movies DESC, genre`),
          };
        },
      });
    },
  };
}
