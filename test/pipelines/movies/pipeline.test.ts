import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../../src/log/index.js';
import {
  extractTmdb,
  moviesCleanJob,
  moviesTables as tables,
  moviesTopics,
  refreshMoviesSilverGold,
  startTmdbSimulator,
  TmdbClient,
  type TmdbSimulator,
} from '../../../src/pipelines/movies/index.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import { runJob } from '../../../src/stream/index.js';

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
});
