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

/**
 * kill -9 of `tributary run movies` while it is extracting from `simulate tmdb` (at TMDB's real
 * 4 requests per second), then `run movies --once` on the same data dir: every movie of the pages
 * is in silver.movies once, credits and reviews hold no duplicates, the simulator never saw more
 * than 4 requests start in any second, across both processes.
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

        const report = await runOnceAsync('movies', env);
        expect(report).toMatch(/source movies\/tmdb \(custom\): drained; .*tmdb: 2 pages, 20 trending/);
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
      },
    );
  },
);
