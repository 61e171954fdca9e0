import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, isConfluentWire, LocalSchemaRegistry, type Log } from '../../../src/log/index.js';
import {
  avroValues,
  extractTmdb,
  moviesModule,
  MoviesServingStore,
  moviesCleanJob,
  moviesTables as tables,
  moviesTopics,
  publishServingStore,
  refreshMoviesSilverGold,
  startTmdbSimulator,
  TmdbClient,
  type TmdbSimulator,
} from '../../../src/pipelines/movies/index.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import { runJob } from '../../../src/stream/index.js';
import { createApp, createLakeTableProvider, KeyStore, startServer } from '../../../src/serve/index.js';

let dir: string;
let lake: Lake;
let sql: SqlEngine;
let log: Log;
let simulator: TmdbSimulator | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-movies-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake);
  log = createMemoryLog();
  for (const topic of Object.values(moviesTopics)) await log.createTopic(topic, { partitions: 2 });
});
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
  sql.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

/** Most requests any window of `windowMs` saw, over the server's arrival times. */
function busiestWindow(arrivals: readonly number[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < arrivals.length; i++) {
    while (arrivals[i] - arrivals[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('movies: simulate tmdb → extractor → cleaner → silver and gold', () => {
  it('keeps to 4 requests in any second through injected 429s and 5xx, and lands every movie of the pages once', async () => {
    // A small catalogue (one page of 6 movies) so the real 1 s window finishes in seconds.
    const catalogue = { seed: 7, movies: 6, people: 10, rate: 4, windowMs: 1000, errorRate: 0.1 };
    simulator = await startTmdbSimulator(catalogue);
    // The client allows 5 in its window: the server's limit answers with 429 + Retry-After, which
    // the client must honour; and the 5xx are retried.
    const greedy = new TmdbClient({
      baseUrl: simulator.url,
      apiKey: simulator.apiKey,
      requestsMax: 5,
      windowMs: 1000,
      retryBaseMs: 50,
    });
    const stats = await extractTmdb({ client: greedy, log, pages: 1 });
    expect(stats.rateLimited).toBeGreaterThan(0);
    expect(stats.serverErrors).toBeGreaterThan(0);
    expect(stats.records.movies).toBe(6);

    // A fresh server (its window empty), the same catalogue: the default client never trips it.
    await simulator.close();
    simulator = await startTmdbSimulator(catalogue);
    const polite = new TmdbClient({ baseUrl: simulator.url, apiKey: simulator.apiKey, retryBaseMs: 50 });
    const again = await extractTmdb({ client: polite, log, pages: 1 });
    expect(again.serverErrors).toBeGreaterThan(0);
    expect(again.rateLimited).toBe(0);
    expect(busiestWindow(simulator.arrivals(), 1000)).toBeLessThanOrEqual(4);

    await runJob(moviesCleanJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
    await refreshMoviesSilverGold(lake, (text, params) => sql.query(text, params), 'test-1');
    const titled = simulator.movies.filter((m) => m.title !== '');
    const rows = await sql.query(
      `SELECT movie_id, count(*) OVER (PARTITION BY movie_id) AS n FROM ${tables.movies}`,
    );
    expect(rows.map((r) => Number(r.movie_id)).sort((a, b) => a - b)).toEqual(titled.map((m) => m.id));
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
    const sentiment = await sql.query(`SELECT count(*) AS n FROM ${tables.movieSentiment}`);
    expect(Number(sentiment[0].n)).toBe(titled.length);
  }, 120_000);

  it('lands every movie of N pages once across two extractions, quarantines the untitled, and serves a movie with its cast', async () => {
    // A fast window (40 per 100 ms) keeps this test short; the 1 s window is the test above.
    simulator = await startTmdbSimulator({ seed: 3, movies: 60, people: 80, rate: 40, windowMs: 100 });
    const client = () =>
      new TmdbClient({ baseUrl: simulator!.url, apiKey: simulator!.apiKey, requestsMax: 40, windowMs: 100 });
    // Avro values under <topic>-value, schemas in the data dir's registry.
    const registry = await LocalSchemaRegistry.open(path.join(dir, 'schemas'));
    const encode = await avroValues(registry);
    const first = await extractTmdb({ client: client(), log, pages: 2, encode });
    expect(first.records.movies).toBeGreaterThanOrEqual(40);
    expect(first.records.trending).toBe(1);
    // A second extraction (a refresh) sends every movie again: silver keeps one row each.
    await extractTmdb({ client: client(), log, pages: 2, encode });
    const [sample] = await log.fetch(moviesTopics.movies, 0, 0);
    expect(isConfluentWire(sample.value)).toBe(true);
    await runJob(moviesCleanJob({ log, lake, schemaRegistry: registry }), {
      dataDir: path.join(dir, 'state'),
      once: true,
    });
    expect(await sql.query(`SELECT count(*) AS n FROM ${tables.rejects}`).catch(() => [{ n: 0 }])).toEqual([
      { n: 0 },
    ]);
    const query = (text: string, params?: unknown[]) => sql.query(text, params);
    await refreshMoviesSilverGold(lake, query, 'test-2');

    // The two pages and the day's trending list (fetched in full too), each movie once.
    const trendingList = (await (
      await fetch(`${simulator.url}/trending/movie/day?api_key=${simulator.apiKey}`)
    ).json()) as { results: { id: number }[] };
    const trendingIds = new Set(trendingList.results.map((r) => r.id));
    const pages = simulator.movies.filter((m, i) => i < 40 || trendingIds.has(m.id));
    expect(pages.length).toBeGreaterThan(40);
    const titled = pages.filter((m) => m.title !== '');
    expect(titled.length).toBeLessThan(pages.length);
    const ids = await sql.query(`SELECT movie_id FROM ${tables.movies} ORDER BY movie_id`);
    expect(ids.map((r) => Number(r.movie_id))).toEqual(titled.map((m) => m.id));
    const quarantined = await sql.query(
      `SELECT quality_rule, count(*) AS n FROM silver.movies_quarantine GROUP BY 1`,
    );
    expect(quarantined.map((r) => [r.quality_rule, Number(r.n)])).toEqual([
      ['missing_title', pages.length - titled.length],
    ]);
    const flagged = await sql.query(
      `SELECT movie_id, quality_flags, overview, release_date, vote_count, runtime, rating_tier FROM ${tables.movies}`,
    );
    for (const row of flagged) {
      const flags = row.quality_flags as string[];
      expect(flags.includes('missing_overview')).toBe(row.overview === null);
      expect(flags.includes('zero_votes')).toBe(Number(row.vote_count) === 0);
      expect(flags.includes('invalid_runtime')).toBe(Number(row.runtime) === 0);
      if (Number(row.vote_count) < 10) expect(row.rating_tier).toBe('unrated');
    }
    expect(flagged.some((r) => (r.quality_flags as string[]).includes('missing_release_date'))).toBe(true);
    // Every review once, scored; every movie a sentiment row.
    const expectedReviews = await sql.query(
      `SELECT count(DISTINCT review_id) AS n FROM ${tables.reviewVersions} WHERE movie_id IN (SELECT movie_id FROM ${tables.movies})`,
    );
    const reviews = await sql.query(
      `SELECT count(*) AS n, count(DISTINCT review_id) AS d, count(sentiment_label) AS scored FROM ${tables.reviews}`,
    );
    expect(Number(reviews[0].n)).toBe(Number(expectedReviews[0].n));
    expect(Number(reviews[0].d)).toBe(Number(reviews[0].n));
    expect(Number(reviews[0].scored)).toBe(Number(reviews[0].n));
    expect(Number(reviews[0].n)).toBeGreaterThan(40); // some movies have more than one page of reviews

    const store = await MoviesServingStore.open({ schema: 'movies_test' });
    await publishServingStore(store, lake, query, 'run-1', 1);
    // A repeated publish of the same checkpoint writes nothing.
    expect(await store.publish(query, 1)).toBe(0);
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    const readKey = (await keys.create({ scopes: ['read'] })).key;
    const api = createApp({
      keys,
      tables: createLakeTableProvider({ lake, sql }),
      pipelines: [moviesModule({ store: () => Promise.resolve(store), extraction: () => first })],
      statusTickMs: 0,
      ui: false,
    });
    const server = await startServer(api.app);
    const call = async (route: string, key: string | null = readKey) => {
      const response = await fetch(`${server.url}${route}`, {
        headers: key === null ? {} : { authorization: `Bearer ${key}` },
      });
      return {
        status: response.status,
        cache: response.headers.get('x-cache'),
        body: (await response.json()) as Record<string, unknown>,
      };
    };
    try {
      expect((await call('/api/movies', null)).status).toBe(401);
      const movie = titled[0];
      const detail = await call(`/api/movies/${movie.id}`);
      expect(detail.status).toBe(200);
      expect(detail.body.title).toBe(movie.title);
      const cast = detail.body.cast as { name: string; character: string; billing_order: number }[];
      expect(cast.length).toBeGreaterThan(5);
      expect(cast.every((c) => typeof c.name === 'string' && c.name !== '')).toBe(true);
      expect(cast.map((c) => c.billing_order)).toEqual([...cast.keys()]);
      expect((detail.body.directors as unknown[]).length).toBeGreaterThan(0);
      const missing = await call('/api/movies/99999999');
      expect(missing.status).toBe(404);
      expect(JSON.stringify(missing.body)).toContain('no movie with TMDB id 99999999');
      const list = await call('/api/movies?limit=200');
      expect((list.body.rows as unknown[]).length).toBe(titled.length);
      const drama = await call('/api/movies?genre=Drama&limit=200');
      const dramaRows = drama.body.rows as { genres: string[] }[];
      expect(dramaRows.every((r) => r.genres.includes('Drama'))).toBe(true);
      const genres = await call('/api/genres');
      expect((genres.body.rows as unknown[]).length).toBeGreaterThan(3);
      const trending = await call('/api/movies/trending');
      expect((trending.body.rows as { rank: number }[]).map((r) => r.rank)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const director = (detail.body.directors as { person_id: number }[])[0];
      const person = await call(`/api/people/${director.person_id}`);
      expect(person.status).toBe(200);
      expect((person.body.filmography as { movie_id: number }[]).some((f) => f.movie_id === movie.id)).toBe(
        true,
      );
      const reviewsOf = await call(`/api/movies/${movie.id}/reviews`);
      expect(reviewsOf.status).toBe(200);

      // 404s say what was not found; every route needs a key.
      for (const [route, message] of [
        ['/api/movies/99999999/reviews', 'no movie with TMDB id 99999999'],
        ['/api/people/99999999', 'no person with TMDB id 99999999'],
      ]) {
        const answer = await call(route);
        expect(answer.status).toBe(404);
        expect(JSON.stringify(answer.body)).toContain(message);
      }
      for (const route of ['/api/movies/trending', `/api/movies/${movie.id}`, '/api/genres', '/api/people/1'])
        expect((await call(route, null)).status).toBe(401);

      // Filters, sort and paging against the silver rows they select.
      type Row = { movie_id: number; vote_average: number; release_year: number; vote_count: number };
      const [silverGood] = await sql.query(
        `SELECT count(*) AS n FROM ${tables.movies} WHERE rating_tier = 'good' AND release_year BETWEEN 1990 AND 2010`,
      );
      const good = await call('/api/movies?rating_tier=good&year_from=1990&year_to=2010&limit=200');
      expect(good.body.total).toBe(Number(silverGood.n));
      expect((good.body.rows as Row[]).length).toBe(Number(silverGood.n));
      const byVote = await call('/api/movies?sort=vote_average&order=asc&min_votes=10&limit=200');
      const votes = (byVote.body.rows as Row[]).map((r) => r.vote_average);
      expect(votes).toEqual([...votes].sort((a, b) => a - b));
      expect((byVote.body.rows as Row[]).every((r) => r.vote_count >= 10)).toBe(true);
      const pageOne = await call('/api/movies?sort=title&order=asc&limit=5');
      const pageTwo = await call('/api/movies?sort=title&order=asc&limit=5&offset=5');
      const both = await call('/api/movies?sort=title&order=asc&limit=10');
      expect([...(pageOne.body.rows as Row[]), ...(pageTwo.body.rows as Row[])]).toEqual(both.body.rows);
      expect(pageTwo.body).toMatchObject({ total: titled.length, limit: 5, offset: 5 });
      expect((await call('/api/movies?year_from=2010&year_to=1990')).status).toBe(400);
      expect((await call('/api/movies?popularity_tier=huge')).status).toBe(400);
      // gold.movie_sentiment's row for a movie without reviews: 0, served as such.
      const quiet = (await call('/api/movies?limit=200')).body.rows as {
        movie_id: number;
        reviews: number;
      }[];
      const unreviewed = quiet.find((r) => r.reviews === 0)!;
      expect(unreviewed).toBeDefined();
      expect(
        ((await call(`/api/movies/${unreviewed.movie_id}`)).body.sentiment as { reviews: number }).reviews,
      ).toBe(0);

      // Cached, and dropped when the serving store is published again (not when gold commits).
      expect((await call('/api/movies/summary')).cache).toBe('miss');
      expect((await call('/api/movies/summary')).cache).toBe('hit');
      await refreshMoviesSilverGold(lake, query, 'test-2b');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await call('/api/movies/summary')).cache).toBe('hit');
      await publishServingStore(store, lake, query, 'run-2', 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await call('/api/movies/summary')).cache).toBe('miss');

      // In the OpenAPI document, with their filters.
      const openapi = (await call('/openapi.json', null)).body as {
        paths: Record<string, { get?: { parameters?: { name: string }[] } }>;
      };
      for (const route of [
        '/api/movies',
        '/api/movies/{id}',
        '/api/movies/{id}/reviews',
        '/api/people/{id}',
        '/api/movies/trending',
        '/api/genres',
      ])
        expect(Object.keys(openapi.paths)).toContain(route);
      expect(openapi.paths['/api/movies'].get?.parameters?.map((p) => p.name)).toEqual(
        expect.arrayContaining([
          'genre',
          'popularity_tier',
          'rating_tier',
          'year_from',
          'year_to',
          'min_votes',
          'sort',
          'limit',
          'offset',
        ]),
      );
    } finally {
      await server.close();
      await store.close();
    }
  }, 120_000);

  it('refuses a value schema the subject cannot accept, with the registry reason', async () => {
    const registry = await LocalSchemaRegistry.open(path.join(dir, 'schemas'));
    // An earlier producer keyed movies by a string id: our long id cannot read its values.
    await registry.register(
      'movies-value',
      JSON.stringify({
        type: 'record',
        name: 'Movie',
        namespace: 'tributary.movies',
        fields: [{ name: 'id', type: 'string' }],
      }),
    );
    await expect(avroValues(registry)).rejects.toThrow(/movies-value/);
  });

  it('an extraction stopped mid-way and run again lands every movie once', async () => {
    simulator = await startTmdbSimulator({ seed: 4, movies: 20, people: 30, rate: 40, windowMs: 100 });
    const client = () =>
      new TmdbClient({ baseUrl: simulator!.url, apiKey: simulator!.apiKey, requestsMax: 40, windowMs: 100 });
    const stop = new AbortController();
    await expect(
      extractTmdb({
        client: client(),
        log,
        pages: 1,
        signal: stop.signal,
        onMovie: (stats) => {
          if (stats.records.movies === 7) stop.abort();
        },
      }),
    ).rejects.toThrow();
    // The interrupted run's records were appended (7 movies); the clean job takes them in.
    await runJob(moviesCleanJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
    const restarted = await extractTmdb({ client: client(), log, pages: 1 });
    expect(restarted.records.movies).toBe(20);
    await runJob(moviesCleanJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
    await refreshMoviesSilverGold(lake, (text, params) => sql.query(text, params), 'test-3');
    const [versions] = await sql.query(`SELECT count(*) AS n FROM ${tables.movieVersions}`);
    expect(Number(versions.n)).toBe(27);
    const rows = await sql.query(`SELECT movie_id FROM ${tables.movies} ORDER BY movie_id`);
    expect(rows.map((r) => Number(r.movie_id))).toEqual(
      simulator.movies.filter((m) => m.title !== '').map((m) => m.id),
    );
    const [reviews] = await sql.query(
      `SELECT count(*) AS n, count(DISTINCT review_id) AS d FROM ${tables.reviews}`,
    );
    expect(Number(reviews.n)).toBe(Number(reviews.d));
  }, 60_000);
});
