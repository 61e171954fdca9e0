import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/core/index.js';
import { openLakeFromConfig } from '../../../src/lake/index.js';
import {
  generateCatalogue,
  moviesTables as tables,
  readChangesCursor,
  startTmdbSimulator,
  type TmdbSimulator,
} from '../../../src/pipelines/movies/index.js';
import { openSqlEngine } from '../../../src/sql/index.js';
import { skipWithout } from '../../fixtures/prerequisite.js';
import { killRunAfterCheckpoint, runEnv, runOnceAsync } from '../kill-run.js';
import { reachablePg, realPgUrl } from '../northwind/harness.js';

/**
 * kill -9 of `tributary run movies` while it is extracting from `simulate tmdb` (at TMDB's real
 * 4 requests per second), then `run movies --once` on the same data dir: every movie of the pages
 * is in silver.movies once, credits and reviews hold no duplicates, the simulator never saw more
 * than 4 requests start in any second, across both processes; the restart's serving store is a
 * real PostgreSQL (MOVIES_SERVING_URL) when one answers. And a refused key stops the run at once.
 */
const built = path.resolve('dist/src/cli/main.js');
const catalogue = { seed: 11, movies: 30, people: 40 };
const pages = 2;

/** Most requests any window of `windowMs` saw, over the server's arrival times. */
function busiestWindow(arrivals: readonly number[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < arrivals.length; i++) {
    while (arrivals[i] - arrivals[j] >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe.skipIf(skipWithout(existsSync(built), `the build is missing (${built}); run npm run build`))(
  'movies: kill -9 mid-extraction, then a restart',
  () => {
    let dir: string;
    let simulator: TmdbSimulator;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'movies-crash-'));
      simulator = await startTmdbSimulator({ ...catalogue, rate: 4, windowMs: 1000 });
    });
    afterAll(async () => {
      await simulator?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it(
      'lands every movie once, no duplicate credit or review, 4 requests a second at most (seed 11)',
      { timeout: 300_000 },
      async () => {
        const dataDir = path.join(dir, 'data');
        const env = runEnv(dataDir, {
          TMDB_API_URL: simulator.url,
          TMDB_API_KEY: simulator.apiKey,
          TMDB_PAGES: String(pages),
        });
        const detailsServed = () =>
          simulator.requests().filter((r) => /^\/3\/movie\/\d+$/.test(r.path) && r.status === 200).length;
        // Killed once the cleaner has checkpointed and a few movies have been fetched.
        await killRunAfterCheckpoint('movies', 'movies.clean', env, 11, {
          after: () => detailsServed() >= 3,
        });
        const atKill = detailsServed();
        expect(atKill).toBeGreaterThanOrEqual(3);
        expect(atKill).toBeLessThan(catalogue.movies);
        // The extraction never finished: no cursor was saved.
        expect(await readChangesCursor(dataDir)).toBeNull();

        // The restart serves from a real PostgreSQL (MOVIES_SERVING_URL), when one answers.
        const pg = await reachablePg(realPgUrl);
        const schema = `movies_crash_${process.pid}`;
        const report = await runOnceAsync(
          'movies',
          pg === null ? env : { ...env, MOVIES_SERVING_URL: realPgUrl, MOVIES_SERVING_SCHEMA: schema },
        );
        // The extraction's statistics at the end of --once: requests, retries, 429s, records, seconds.
        expect(report).toMatch(
          /source movies\/tmdb \(custom\): drained; .*tmdb: 2 pages, 20 trending, 0 changed; 30 movies, 30 credits, \d+ reviews, \d+ people; \d+ requests, \d+ retries, 0 × 429, 0 × 5xx, 0 skipped \(404\) in \d+\.\d s/,
        );
        expect(report).toMatch(/stream movies\.clean: finished/);
        expect(await readChangesCursor(dataDir)).toBe(new Date().toISOString().slice(0, 10));

        const expected = generateCatalogue(catalogue.seed, catalogue.movies, catalogue.people);
        const titled = expected.movies.filter((m) => m.title !== '');
        const config = loadConfig({ env: {}, dotenv: false, overrides: { dataDir } });
        const lake = await openLakeFromConfig(config);
        const sql = await openSqlEngine(lake);
        try {
          const movies = await sql.query(
            `SELECT movie_id, count(*) OVER (PARTITION BY movie_id) AS n FROM ${tables.movies} ORDER BY movie_id`,
          );
          expect(movies.map((r) => Number(r.movie_id))).toEqual(titled.map((m) => m.id));
          expect(movies.every((r) => Number(r.n) === 1)).toBe(true);
          // The killed run's versions were kept and collapse; the restart fetched every movie again.
          const [versions] = await sql.query(`SELECT count(*) AS n FROM ${tables.movieVersions}`);
          expect(Number(versions.n)).toBeGreaterThanOrEqual(catalogue.movies);

          const credits = await sql.query(
            `SELECT count(*) AS n, count(DISTINCT (movie_id, person_id, role, coalesce(job, ''))) AS d FROM ${tables.credits}`,
          );
          const creditsExpected = titled.reduce(
            (n, m) => n + expected.credits.get(m.id)!.cast.length + expected.credits.get(m.id)!.crew.length,
            0,
          );
          expect([Number(credits[0].n), Number(credits[0].d)]).toEqual([creditsExpected, creditsExpected]);

          const reviews = await sql.query(
            `SELECT count(*) AS n, count(DISTINCT review_id) AS d FROM ${tables.reviews}`,
          );
          const reviewsExpected = titled.reduce((n, m) => n + expected.reviews.get(m.id)!.length, 0);
          expect([Number(reviews[0].n), Number(reviews[0].d)]).toEqual([reviewsExpected, reviewsExpected]);
          const [sentiment] = await sql.query(`SELECT count(*) AS n FROM ${tables.movieSentiment}`);
          expect(Number(sentiment.n)).toBe(titled.length);
        } finally {
          sql.close();
          await lake.close();
        }
        expect(simulator.statuses()[429] ?? 0).toBe(0);
        expect(busiestWindow(simulator.arrivals(), 1000)).toBeLessThanOrEqual(4);

        if (pg === null) {
          process.stderr.write(`skipping the PostgreSQL serving check: nothing answers at ${realPgUrl}\n`);
          return;
        }
        try {
          const count = async (table: string) =>
            Number((await pg.query(`SELECT count(*) AS n FROM ${schema}.${table}`)).rows[0].n);
          expect(await count('movies')).toBe(titled.length);
          expect(await count('reviews')).toBe(
            titled.reduce((n, m) => n + expected.reviews.get(m.id)!.length, 0),
          );
          const indexes = await pg.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1`, [schema]);
          expect(indexes.rows.map((r: { indexname: string }) => r.indexname)).toEqual(
            expect.arrayContaining(['movies_genres_idx', 'movies_release_year_idx', 'credits_person_id_idx']),
          );
        } finally {
          await pg.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await pg.end();
        }
      },
    );

    it(
      'stops at a refused key, naming TMDB_API_KEY and TMDB_READ_ACCESS_TOKEN',
      { timeout: 120_000 },
      async () => {
        const env = runEnv(path.join(dir, 'refused'), {
          TMDB_API_URL: simulator.url,
          TMDB_API_KEY: 'not-the-key',
        });
        const before = simulator.requests().length;
        const failure = await runOnceAsync('movies', env).then(
          () => null,
          (error: Error) => error.message,
        );
        expect(failure).toMatch(/exited 1/);
        expect(failure).toMatch(
          /source movies\/tmdb \(custom\): failed.*TMDB_API_KEY.*TMDB_READ_ACCESS_TOKEN/,
        );
        // One request, answered 401, and no retry.
        expect(
          simulator
            .requests()
            .slice(before)
            .map((r) => r.status),
        ).toEqual([401]);
      },
    );
  },
);
