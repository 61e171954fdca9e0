import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootLogger } from '../../src/core/index.js';
import { createSpoolSource } from '../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog } from '../../src/log/index.js';
import {
  generateViewing,
  LiveBoard,
  refreshViewingGold,
  toCsv,
  viewingModule,
  viewingSpoolOptions,
  viewingTopics,
  viewingValidateJob,
} from '../../src/pipelines/viewing/index.js';
import { createLakeTableProvider, type RunningServer } from '../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { runJob } from '../../src/stream/index.js';
import { skipWithout } from '../fixtures/prerequisite.js';
import { chromiumPath, openDashboard, serveDashboard, type ServedDashboard } from './browser.js';

/** The viewing page in chromium: its filters change the charts' data, land in the URL and survive a reload. */
let dir: string;
let lake: Lake;
let sql: SqlEngine;
let dashboard: ServedDashboard | undefined;
let server: RunningServer;
let context: BrowserContext;
let adminKey: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-viewing-ui-'));
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  const log = createMemoryLog();
  await log.createTopic(viewingTopics.events, { partitions: 2 });
  const spool = path.join(dir, 'spool');
  await mkdir(spool);
  await writeFile(
    path.join(spool, 'events.csv'),
    toCsv(generateViewing({ users: 60, days: 6, seed: 21 }).records),
  );
  await createSpoolSource(
    { ...viewingSpoolOptions(spool), stableMs: 0 },
    { log, logger: rootLogger.child({}, { level: 'silent' }) },
  ).poll();
  await runJob(viewingValidateJob({ log, lake }), { dataDir: path.join(dir, 'state'), once: true });
  await refreshViewingGold(lake, 'ui-test');
  sql = await openSqlEngine(lake);
  dashboard = await serveDashboard(dir, {
    tables: createLakeTableProvider({ lake, sql }),
    pipelines: [
      viewingModule({ lake, log, query: (text, params) => sql.query(text, params), live: new LiveBoard() }),
    ],
  });
  ({ server, context, adminKey } = dashboard);
}, 180_000);

afterAll(async () => {
  await dashboard?.close();
  sql?.close();
  await lake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const chartText = (page: Page, id: string) =>
  page.locator(`#chart-${id} svg`).evaluate((svg) => svg.textContent ?? '');
const nextRender = (page: Page, before: string | null) =>
  page.waitForFunction((b) => document.body.dataset.ready !== b, before);

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('viewing page filters in chromium', () => {
  it('a show-type filter changes the top-shows chart, lands in the URL and survives a reload', async () => {
    const { page, errors } = await openDashboard(context, server.url, adminKey, '#/p/viewing');
    const all = await chartText(page, 'top');
    const [movie] = await sql.query(
      `SELECT arg_max(show_title, event_ts) AS title FROM bronze.viewing_events WHERE show_type = 'movie'
         GROUP BY show_id ORDER BY sum(watch_seconds) DESC LIMIT 1`,
    );
    const ready = await page.evaluate(() => document.body.dataset.ready ?? null);
    await page.selectOption('#filter-show_type', 'movie');
    await nextRender(page, ready);
    expect(page.url()).toContain('show_type=movie');
    const movies = await chartText(page, 'top');
    expect(movies).not.toBe(all);
    expect(movies).toContain(String(movie.title).slice(0, 8));

    await page.reload();
    await page.waitForSelector('body[data-ready]');
    expect(await page.locator('#filter-show_type').inputValue()).toBe('movie');
    expect(await chartText(page, 'top')).toBe(movies);
    expect(errors).toEqual([]);
    await page.close();
  });
});
