import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadConfig,
  ManualClock,
  metricsRegistry,
  RateBudgets,
  rootLogger,
  systemClock,
  Throttle,
  type Clock,
} from '../../../src/core/index.js';
import type { SourceContext } from '../../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../../src/log/index.js';
import {
  moviesCleanJob,
  moviesPipeline,
  moviesTables as tables,
  readChangesCursor,
  refreshMoviesSilverGold,
  startTmdbSimulator,
  TmdbClient,
  tmdbRateBudget,
  type TmdbSimulator,
} from '../../../src/pipelines/movies/index.js';
import type { PipelineServices } from '../../../src/pipelines/types.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import { runJob } from '../../../src/stream/index.js';

/**
 * The refresh `up` runs on a schedule, through the pipeline's declared source: popular pages, the
 * trending list (gold.trending's ranks) and the movies changed since the saved cursor, which moves
 * only after the log acknowledged the extraction's records.
 */
let dir: string;
let lake: Lake;
let sql: SqlEngine;
let simulator: TmdbSimulator;
const savedKey = process.env.TMDB_API_KEY;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-movies-refresh-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake);
  simulator = await startTmdbSimulator({ seed: 5, movies: 80, people: 60, rate: 40, windowMs: 100 });
  process.env.TMDB_API_KEY = simulator.apiKey;
});
afterEach(async () => {
  if (savedKey === undefined) delete process.env.TMDB_API_KEY;
  else process.env.TMDB_API_KEY = savedKey;
  await simulator.close();
  sql.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

function servicesOn(dataDir: string, log: Log, settings: Record<string, string> = {}): PipelineServices {
  const config = loadConfig({
    env: {},
    dotenv: false,
    cwd: dataDir,
    overrides: { dataDir, pipelineSettings: { movies: { apiUrl: simulator.url, pages: '1', ...settings } } },
  });
  return { config, log, lake, query: (text, params) => sql.query(text, params) };
}

const context = (): SourceContext => ({
  signal: new AbortController().signal,
  clock: systemClock,
  logger: rootLogger.child({}, { level: 'silent' }),
  report: () => undefined,
  // The pipeline's shared budget, at the simulator's fast test rate.
  throttle: new Throttle({ mode: 'sliding-window', requestsMax: 40, windowMs: 100 }),
});

async function movieKeys(log: Log): Promise<string[]> {
  const keys: string[] = [];
  for (let partition = 0; partition < 4; partition++)
    for (const record of await log.fetch('movies', partition, 0, { maxRecords: 100_000 }))
      keys.push(Buffer.from(record.key!).toString());
  return keys;
}

describe('movies refresh: trending and changes since the saved cursor', () => {
  it('fetches the trending list and, from the second run on, the movies changed since the cursor', async () => {
    const log = createMemoryLog();
    const services = servicesOn(path.join(dir, 'data'), log);
    const [source] = moviesPipeline.sources!(services);
    if (source.kind !== 'custom' || source.drain === undefined) throw new Error('tmdb is a custom source');
    expect(source.rateBudget).toBe('tmdb');
    expect(await readChangesCursor(services.config.dataDir)).toBeNull();

    await source.drain(context());
    const today = new Date().toISOString().slice(0, 10);
    expect(await readChangesCursor(services.config.dataDir)).toBe(today);
    const first = new Set(await movieKeys(log));
    // No cursor on a first run: page 1 and the trending list, no /movie/changes call.
    expect(simulator.requests().some((r) => r.path === '/3/movie/changes')).toBe(false);

    // A movie outside what was fetched is edited on TMDB: the next refresh picks it up.
    const edited = simulator.movies.find((m) => !first.has(String(m.id)) && m.title !== '')!;
    simulator.touch(edited.id, { title: 'The Edited Cut', popularity: 4321 });
    await source.drain(context());
    expect(simulator.requests().filter((r) => r.path === '/3/movie/changes').length).toBeGreaterThan(0);
    const second = await movieKeys(log);
    expect(second).toContain(String(edited.id));

    await runJob(moviesCleanJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
    await refreshMoviesSilverGold(lake, (text, params) => sql.query(text, params), 'refresh-1');
    const [row] = await sql.query(`SELECT title, popularity FROM ${tables.movies} WHERE movie_id = ?`, [
      edited.id,
    ]);
    expect(row).toEqual({ title: 'The Edited Cut', popularity: 4321 });
    // gold.trending is TMDB's trending list (its order), not a ranking of our own.
    const list = (await (
      await fetch(`${simulator.url}/trending/movie/day?api_key=${simulator.apiKey}`)
    ).json()) as { results: { id: number }[] };
    const trending = await sql.query(`SELECT movie_id, rank FROM ${tables.trending} ORDER BY rank`);
    expect(trending.map((r) => Number(r.movie_id))).toEqual(list.results.map((r) => r.id));
    expect(trending.map((r) => r.rank)).toEqual(list.results.map((_, i) => i + 1));
  }, 120_000);

  it('runs again every TMDB_REFRESH_MINUTES under up, reading the changes since the last run', async () => {
    const log = createMemoryLog();
    const services = servicesOn(path.join(dir, 'data'), log, { refreshMinutes: '5' });
    const [source] = moviesPipeline.sources!(services);
    if (source.kind !== 'custom') throw new Error('tmdb is a custom source');
    const manual = new ManualClock(Date.now());
    // The loop's clock, counting the sleeps it started (the waits between extractions).
    let sleeps = 0;
    const clock: Clock = {
      now: () => manual.now(),
      sleep: (ms) => {
        sleeps++;
        return manual.sleep(ms);
      },
    };
    const stop = new AbortController();
    const changesCalls = () => simulator.requests().filter((r) => r.path === '/3/movie/changes').length;
    const until = async (condition: () => Promise<boolean> | boolean) => {
      const deadline = Date.now() + 30_000;
      while (!(await condition()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await condition()).toBe(true);
    };
    const running = source.run({ ...context(), clock, signal: stop.signal });
    await until(() => sleeps === 1);
    expect(await readChangesCursor(services.config.dataDir)).not.toBeNull();
    const first = new Set(await movieKeys(log));
    const edited = simulator.movies.find((m) => !first.has(String(m.id)) && m.title !== '')!;
    simulator.touch(edited.id, { popularity: 999 });
    manual.advance(5 * 60_000 - 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(changesCalls()).toBe(0);
    manual.advance(1);
    await until(async () => (await movieKeys(log)).includes(String(edited.id)));
    expect(changesCalls()).toBeGreaterThan(0);
    // The second extraction ends and the loop waits again; stopped then, it ends.
    await until(() => sleeps === 2);
    stop.abort();
    manual.advance(5 * 60_000);
    await running;
  }, 120_000);

  it('keeps the cursor where it was when the log does not acknowledge the records', async () => {
    const failing = createMemoryLog();
    failing.append = () => Promise.reject(new Error('disk full'));
    const services = servicesOn(path.join(dir, 'data'), failing);
    const [source] = moviesPipeline.sources!(services);
    if (source.kind !== 'custom' || source.drain === undefined) throw new Error('tmdb is a custom source');
    await expect(source.drain(context())).rejects.toThrow(/disk full/);
    expect(await readChangesCursor(services.config.dataDir)).toBeNull();
  }, 60_000);
});

describe('movies: the shared tmdb budget and refused keys', () => {
  it("holds every client of the budget back for a 429's Retry-After", async () => {
    await simulator.close();
    simulator = await startTmdbSimulator({ seed: 5, movies: 20, people: 30, rate: 4, windowMs: 1000 });
    const budget = new RateBudgets().declare('tmdb', tmdbRateBudget({ TMDB_RATE: '4' }));
    const first = new TmdbClient({
      baseUrl: simulator.url,
      apiKey: simulator.apiKey,
      throttle: budget,
      attemptsMax: 1,
    });
    const second = new TmdbClient({ baseUrl: simulator.url, apiKey: simulator.apiKey, throttle: budget });
    // Another user of the API fills the server's window: the next request is answered 429.
    for (let i = 0; i < 4; i++) await fetch(`${simulator.url}/genre/movie/list?api_key=${simulator.apiKey}`);
    await expect(first.get('/genre/movie/list')).rejects.toThrow(/429/);
    const refused = simulator.requests().at(-1)!;
    expect(refused.status).toBe(429);
    // The other client on the same budget waits out Retry-After (1 s) before it starts.
    await second.get('/genre/movie/list');
    const next = simulator.requests().at(-1)!;
    expect(next.status).toBe(200);
    expect(next.atMs - refused.atMs).toBeGreaterThanOrEqual(1000);
    expect(first.stats.rateLimited + second.stats.rateLimited).toBe(1);
  });

  it('stops at a 401 without retrying, naming the variables to set', async () => {
    const client = new TmdbClient({ baseUrl: simulator.url, apiKey: 'wrong', retryBaseMs: 10 });
    await expect(client.get('/movie/popular')).rejects.toThrow(
      /TMDB refused the credentials \(401 status_code 7: Invalid API key.*\): set TMDB_API_KEY .* or TMDB_READ_ACCESS_TOKEN/,
    );
    expect(client.stats).toMatchObject({ requests: 1, retries: 0 });
    expect(() => new TmdbClient({ baseUrl: simulator.url })).toThrow(/TMDB_API_KEY.*TMDB_READ_ACCESS_TOKEN/);
  });

  it('exposes the last extraction as metrics', async () => {
    const log = createMemoryLog();
    const services = servicesOn(path.join(dir, 'data'), log);
    const [source] = moviesPipeline.sources!(services);
    if (source.kind !== 'custom' || source.drain === undefined) throw new Error('tmdb is a custom source');
    const positions: string[] = [];
    await source.drain({
      ...context(),
      report: (p) => p.position !== undefined && positions.push(p.position),
    });
    const text = await metricsRegistry.metrics();
    const movies = Number(/tributary_tmdb_extraction_records\{topic="movies"\} (\d+)/.exec(text)?.[1]);
    expect(movies).toBeGreaterThanOrEqual(20);
    expect(text).toMatch(/tributary_tmdb_extraction_requests\{kind="requests"\} [1-9]\d*/);
    expect(text).toMatch(/tributary_tmdb_extraction_seconds [\d.]+/);
    // The source's position (shown on /api/status and `tributary status`) is the same statistics line.
    expect(positions.at(-1)).toMatch(new RegExp(`tmdb: 1 pages, 20 trending, 0 changed; ${movies} movies`));
  }, 60_000);
});
