import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import {
  extractTmdb,
  moviesCleanJob,
  moviesModule,
  MoviesServingStore,
  moviesTopics,
  refreshMoviesSilverGold,
  startTmdbSimulator,
  TmdbClient,
  type ExtractionStats,
} from '../../src/pipelines/movies/index.js';
import { type RunningServer } from '../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { runJob } from '../../src/stream/index.js';
import { skipWithout } from '../fixtures/prerequisite.js';
import { chromiumPath, openDashboard, serveDashboard, type ServedDashboard } from './browser.js';

/**
 * The movies page in chromium, over a serving store filled from `simulate tmdb`: its filters
 * (genre, tier, release-year range) narrow the movies table and land in the URL; a click on a
 * title opens the movie's detail (genres, top cast with characters, directors, sentiment,
 * reviews) as the API gives it, which survives a reload and closes again.
 */
let dir: string;
let lake: Lake;
let sql: SqlEngine;
let store: MoviesServingStore;
let dashboard: ServedDashboard | undefined;
let server: RunningServer;
let context: BrowserContext;
let adminKey: string;
const screenshots = path.resolve(import.meta.dirname, '../../test-artifacts/screenshots');

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-movies-ui-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake);
  const log = createMemoryLog();
  for (const topic of Object.values(moviesTopics)) await log.createTopic(topic, { partitions: 2 });
  const simulator = await startTmdbSimulator({ seed: 8, movies: 60, people: 80, rate: 40, windowMs: 100 });
  let stats: ExtractionStats;
  try {
    const client = new TmdbClient({
      baseUrl: simulator.url,
      apiKey: simulator.apiKey,
      requestsMax: 40,
      windowMs: 100,
    });
    stats = await extractTmdb({ client, log, pages: 2 });
  } finally {
    await simulator.close();
  }
  await runJob(moviesCleanJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
  const query = (text: string, params?: unknown[]) => sql.query(text, params);
  await refreshMoviesSilverGold(lake, query, 'ui-1');
  store = await MoviesServingStore.open({ schema: 'movies_ui' });
  await store.publish(query, 1);
  dashboard = await serveDashboard(dir, {
    pipelines: [moviesModule({ store: () => Promise.resolve(store), extraction: () => stats })],
  });
  ({ server, context, adminKey } = dashboard);
}, 240_000);

afterAll(async () => {
  await dashboard?.close();
  await store?.close();
  sql?.close();
  await lake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const nextRender = (page: Page, before: string | null) =>
  page.waitForFunction((b) => document.body.dataset.ready !== b, before);
const readyOf = (page: Page) => page.evaluate(() => document.body.dataset.ready ?? null);
/** The movies table's cells of one column, by its header. */
async function column(page: Page, header: string): Promise<string[]> {
  const headers = await page.locator('#table-movies th').allTextContents();
  const index = headers.indexOf(header);
  if (index < 0) throw new Error(`no column ${header} in ${headers.join(', ')}`);
  return page.locator(`#table-movies tbody tr td:nth-child(${index + 1})`).allTextContents();
}

async function apiGet<T>(route: string): Promise<T> {
  const response = await fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${adminKey}` } });
  expect(response.status, route).toBe(200);
  return (await response.json()) as T;
}

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('movies page in chromium', () => {
  it('filters by genre, tier and year range, kept in the URL', async () => {
    const { page, errors } = await openDashboard(context, server.url, adminKey, '#/p/movies');
    const allTitles = await column(page, 'title');
    expect(allTitles.length).toBe(20);

    let ready = await readyOf(page);
    await page.selectOption('#filter-genre', 'Drama');
    await nextRender(page, ready);
    expect(page.url()).toContain('genre=Drama');
    const genres = await column(page, 'genres');
    expect(genres.length).toBeGreaterThan(0);
    expect(genres.every((g) => g.includes('Drama'))).toBe(true);
    const dramas = await apiGet<{ total: number; rows: { title: string }[] }>(
      '/api/movies?genre=Drama&limit=20',
    );
    expect(await column(page, 'title')).toEqual(dramas.rows.map((r) => r.title));

    ready = await readyOf(page);
    await page.fill('#filter-year-from', '2000');
    await page.locator('#filter-year-from').dispatchEvent('change');
    await nextRender(page, ready);
    ready = await readyOf(page);
    await page.fill('#filter-year-to', '2015');
    await page.locator('#filter-year-to').dispatchEvent('change');
    await nextRender(page, ready);
    expect(page.url()).toContain('year_from=2000');
    expect(page.url()).toContain('year_to=2015');
    const years = (await column(page, 'release_date')).map((d) => Number(d.slice(0, 4)));
    expect(years.length).toBeGreaterThan(0);
    expect(years.every((y) => y >= 2000 && y <= 2015)).toBe(true);
    const expected = await apiGet<{ rows: { title: string }[] }>(
      '/api/movies?genre=Drama&year_from=2000&year_to=2015&limit=20',
    );
    expect(await column(page, 'title')).toEqual(expected.rows.map((r) => r.title));

    ready = await readyOf(page);
    await page.selectOption('#filter-rating_tier', 'unrated');
    await nextRender(page, ready);
    expect((await column(page, 'rating_tier')).every((t) => t === 'unrated' || t === 'nothing yet')).toBe(
      true,
    );

    await page.reload();
    await page.waitForSelector('body[data-ready]');
    expect(await page.locator('#filter-genre').inputValue()).toBe('Drama');
    expect(await page.locator('#filter-year-from').inputValue()).toBe('2000');
    expect(await page.locator('#filter-rating_tier').inputValue()).toBe('unrated');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('opens a movie from the table: genres, top cast with characters, directors, sentiment, reviews', async () => {
    const { page, errors } = await openDashboard(context, server.url, adminKey, '#/p/movies');
    // The most-reviewed movie of the first page of the table.
    const listed = await apiGet<{ rows: { movie_id: number; reviews: number }[] }>('/api/movies?limit=20');
    const target = [...listed.rows].sort((a, b) => b.reviews - a.reviews)[0];
    expect(target.reviews).toBeGreaterThan(0);
    const movie = await apiGet<{
      title: string;
      genres: string[];
      cast: { name: string; character: string }[];
      directors: { name: string }[];
      sentiment: { reviews: number; avg_sentiment: number };
    }>(`/api/movies/${target.movie_id}`);

    const ready = await readyOf(page);
    await page.locator(`#table-movies a.detail-link[data-key="${target.movie_id}"]`).click();
    await nextRender(page, ready);
    expect(page.url()).toContain(`movie=${target.movie_id}`);
    const detail = page.locator('#detail-movie');
    const check = async () => {
      expect(await detail.locator('h2').textContent()).toBe(movie.title);
      expect(await detail.locator('dd[data-field="genres"]').textContent()).toBe(movie.genres.join(', '));
      expect(await detail.locator('dd[data-field="sentiment.reviews"]').textContent()).toBe(
        String(movie.sentiment.reviews),
      );
      const cast = detail.locator('[data-list="top-cast"] tbody tr');
      expect(await cast.count()).toBe(movie.cast.length);
      expect(await cast.first().locator('td').nth(0).textContent()).toBe(movie.cast[0].name);
      expect(await cast.first().locator('td').nth(1).textContent()).toBe(movie.cast[0].character);
      expect(await detail.locator('[data-list="directors"] tbody td').allTextContents()).toEqual(
        movie.directors.map((d) => d.name),
      );
      expect(await detail.locator('[data-list="reviews"] tbody tr').count()).toBe(
        Math.min(20, movie.sentiment.reviews),
      );
    };
    await check();
    await mkdir(screenshots, { recursive: true });
    await page.screenshot({ path: path.join(screenshots, 'movies-detail.png'), fullPage: true });

    await page.reload();
    await page.waitForSelector('body[data-ready]');
    await check();

    const before = await readyOf(page);
    await detail.locator('a.detail-close').click();
    await nextRender(page, before);
    expect(page.url()).not.toContain('movie=');
    expect(await page.locator('#detail-movie').count()).toBe(0);

    // A movie that does not exist says what was not found, in place.
    const missing = await readyOf(page);
    await page.evaluate(() => (window.location.hash = '#/p/movies?movie=99999999'));
    await nextRender(page, missing);
    expect(await page.locator('#detail-movie').textContent()).toContain('no movie with TMDB id 99999999');
    expect(errors.filter((e) => !e.includes('404'))).toEqual([]);
    await page.close();
  });
});
