import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import {
  ensureLiveTable,
  medallionJobs,
  replaceDatePartition,
  northwindModule,
  refreshCombined,
} from '../../src/pipelines/northwind/index.js';
import { lineageModule, type RunningServer } from '../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { BatchDag, LineageEmitter, LineageGraphReader } from '../../src/stream/index.js';
import { skipWithout } from '../fixtures/prerequisite.js';
import { chromiumPath, openDashboard, serveDashboard, type ServedDashboard } from './browser.js';

/**
 * Page filters in a real browser (Debian's chromium via playwright-core): the northwind page's
 * country / category selects and order-date range go into its charts' routes and into the URL.
 * The lake holds a small silver.sales (3 countries × 3 categories over 1997–1998) and the gold
 * tables the pipeline's own SQL computes from it.
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const screenshots = path.join(repoRoot, 'test-artifacts', 'screenshots');

let dir: string;
let lake: Lake;
let sql: SqlEngine;
let dashboard: ServedDashboard | undefined;
let server: RunningServer;
let context: BrowserContext;
let adminKey: string;

/** Sales lines: France sells mostly Beverages, Germany Condiments, USA Seafood; dates 1997–1998. */
const silverSalesSql = `SELECT
  CAST(i AS INTEGER) AS order_id, CAST(i % 9 AS INTEGER) AS product_id, 'C' || (i % 12) AS customer_id,
  CAST(1 AS INTEGER) AS employee_id, CAST(DATE '1997-01-01' + CAST(i * 3 AS INTEGER) AS DATE) AS order_date,
  CAST(NULL AS DATE) AS shipped_date, CAST(1 AS INTEGER) AS ship_via, 'P' || (i % 9) AS product_name,
  CAST(i % 3 AS INTEGER) AS category_id,
  ['Beverages', 'Condiments', 'Seafood'][1 + (i % 3)] AS category_name,
  'Company ' || (i % 12) AS company_name, 'City' AS city,
  ['France', 'Germany', 'USA'][1 + ((i // 3) % 3)] AS country,
  ['France', 'Germany', 'USA'][1 + ((i // 3) % 3)] AS country_raw,
  CAST(10 AS DECIMAL(10,2)) AS unit_price, CAST(1 + (i % 5) AS INTEGER) AS quantity,
  CAST(0 AS DECIMAL(4,2)) AS discount,
  CAST((1 + (i % 5)) * 10 * (CASE WHEN (i % 3) = ((i // 3) % 3) THEN 5 ELSE 1 END) AS DECIMAL(18,2)) AS line_total
FROM range(240) t(i)`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-filters-ui-'));
  await mkdir(screenshots, { recursive: true });
  const config = loadConfig({
    env: {},
    cwd: dir,
    dotenv: false,
    overrides: { dataDir: path.join(dir, 'data') },
  });
  lake = await openLake({ storage: new LocalStorage(path.join(config.dataDir, 'lake')) });
  // One run date, as the pipeline writes them: silver and gold partitioned by ingestion_date.
  const runDate = '1998-12-31';
  await replaceDatePartition(lake.table('silver.sales'), runDate, silverSalesSql, 'test:silver');
  for (const output of medallionJobs(runDate)[1].outputs)
    await replaceDatePartition(lake.table(output.table), runDate, output.sql, `test:${output.table}`);
  await ensureLiveTable(lake);
  await refreshCombined(lake);
  sql = await openSqlEngine(lake);
  // Lineage of a small DAG shaped like northwind's: source → bronze → silver → gold, plus a topic.
  const lineage = new LineageEmitter({ dataDir: config.dataDir });
  const ok = () => Promise.resolve();
  await new BatchDag(
    [
      {
        name: 'bronze',
        inputs: ['postgres://pg:5432/nw.public.orders'],
        outputs: ['bronze.orders'],
        run: ok,
      },
      { name: 'silver', inputs: ['bronze.orders', 'topic:sales.live'], outputs: ['silver.sales'], run: ok },
      {
        name: 'gold',
        inputs: ['silver.sales'],
        outputs: ['gold.kpi_summary', 'gold.top_countries'],
        run: ok,
      },
    ],
    { lineage },
  ).runAll();
  await lineage.flush();
  dashboard = await serveDashboard(dir, {
    pipelines: [
      northwindModule({ query: (text, params) => sql.query(text, params) }),
      lineageModule(new LineageGraphReader(config.dataDir)),
    ],
  });
  ({ server, context, adminKey } = dashboard);
}, 120_000);

afterAll(async () => {
  await dashboard?.close();
  sql?.close();
  await lake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const openPage = (hash: string) => openDashboard(context, server.url, adminKey, hash);

/**
 * This fixture runs no silver data-quality run, so `gold.quality_results` does not exist: the
 * page's quality tile and table answer 404 and say "Not available" while the rest renders. Those two
 * resource errors are expected; any other console error fails the test.
 */
function withoutQualityResults(errors: string[]): string[] {
  return errors.filter(
    (e) => e !== 'Failed to load resource: the server responded with a status of 404 (Not Found)',
  );
}

/** The bar labels and values a chart shows (its SVG text, in order). */
const chartText = (page: Page, id: string) =>
  page.locator(`#chart-${id} svg`).evaluate((svg) => svg.textContent ?? '');

/** Waits for a new render of the page (navigation increments body[data-ready]). */
async function nextRender(page: Page, before: string | null): Promise<void> {
  await page.waitForFunction((b) => document.body.dataset.ready !== b, before);
}

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('northwind page filters in chromium', () => {
  it('a country filter changes the category chart, lands in the URL and survives a reload', async () => {
    const { page, errors } = await openPage('#/p/northwind');
    const unfiltered = await chartText(page, 'categories');
    expect(await page.locator('#table-quality-silver-sales').textContent()).toContain('Not available');
    const options = await page.locator('#filter-country option').allTextContents();
    expect(options).toEqual(['All', 'France', 'Germany', 'USA']);
    const countriesBefore = await chartText(page, 'top-countries');

    let ready = await page.evaluate(() => document.body.dataset.ready ?? null);
    await page.selectOption('#filter-country', 'France');
    await nextRender(page, ready);
    expect(page.url()).toContain('#/p/northwind?country=France');
    const france = await chartText(page, 'categories');
    expect(france).not.toBe(unfiltered);
    // France sells five times more Beverages than anything else: Beverages is its first bar.
    const rows = (await (
      await fetch(`${server.url}/api/northwind/categories?country=France`, {
        headers: { authorization: `Bearer ${adminKey}` },
      })
    ).json()) as { rows: { category_name: string; revenue: number }[] };
    expect(rows.rows[0].category_name).toBe('Beverages');
    expect(france.indexOf('Beverages')).toBeLessThan(france.indexOf('Seafood'));
    // The country filter applies to the category chart only.
    expect(await chartText(page, 'top-countries')).toBe(countriesBefore);

    // A date range narrows both charts; the URL keeps every filter.
    ready = await page.evaluate(() => document.body.dataset.ready ?? null);
    await page.fill('#filter-ordered-from', '1998-01-01');
    await page.locator('#filter-ordered-from').dispatchEvent('change');
    await nextRender(page, ready);
    expect(page.url()).toContain('country=France');
    expect(page.url()).toContain('from=1998-01-01');
    const franceIn1998 = await chartText(page, 'categories');
    expect(franceIn1998).not.toBe(france);
    expect(await chartText(page, 'top-countries')).not.toBe(countriesBefore);

    // Reload: the filters come back from the URL, and so does the filtered data.
    await page.reload();
    await page.waitForSelector('body[data-ready]');
    expect(await page.locator('#filter-country').inputValue()).toBe('France');
    expect(await page.locator('#filter-ordered-from').inputValue()).toBe('1998-01-01');
    expect(await chartText(page, 'categories')).toBe(franceIn1998);
    await page.screenshot({ path: path.join(screenshots, 'northwind-filters.png'), fullPage: true });

    // "All" removes the parameter again.
    ready = await page.evaluate(() => document.body.dataset.ready ?? null);
    await page.selectOption('#filter-country', '');
    await nextRender(page, ready);
    expect(page.url()).not.toContain('country=');
    expect(withoutQualityResults(errors)).toEqual([]);
    await page.close();
  });

  it('a shared URL with a category shows that category’s country ranking', async () => {
    const { page, errors } = await openPage('#/p/northwind?category=Seafood');
    expect(await page.locator('#filter-category').inputValue()).toBe('Seafood');
    const text = await chartText(page, 'top-countries');
    // The USA sell most Seafood: they rank first in that view.
    expect(text.indexOf('USA')).toBeLessThan(text.indexOf('France'));
    expect(text.indexOf('USA')).toBeLessThan(text.indexOf('Germany'));
    expect(withoutQualityResults(errors)).toEqual([]);
    await page.close();
  });

  it('the Lineage page draws source → table → job → table from the run events', async () => {
    const { page, errors } = await openPage('#/p/lineage');
    const svg = page.locator('#chart-lineage-graph svg');
    expect(await svg.getAttribute('data-nodes')).toBe('9');
    expect(await svg.getAttribute('data-edges')).toBe('8');
    const kinds = await page
      .locator('.lineage-node')
      .evaluateAll((nodes) =>
        nodes.map((n) => `${n.getAttribute('data-kind')}:${n.textContent?.split(':')[0] ?? ''}`),
      );
    expect(kinds.filter((k) => k.startsWith('source')).length).toBe(1);
    expect(kinds.filter((k) => k.startsWith('topic')).length).toBe(1);
    expect(kinds.filter((k) => k.startsWith('job')).length).toBe(3);
    expect(kinds.filter((k) => k.startsWith('table')).length).toBe(4);
    // Left to right: the source sits left of its job, the job left of the gold tables.
    const x = (id: string) =>
      page
        .locator(`.lineage-node[data-id="${id}"] rect`)
        .first()
        .evaluate((r) => Number(r.getAttribute('x')));
    expect(await x('postgres://pg:5432/nw.public.orders')).toBeLessThan(await x('job:tributary/bronze'));
    expect(await x('job:tributary/gold')).toBeLessThan(await x('tributary://lake/gold.kpi_summary'));
    await page.screenshot({ path: path.join(screenshots, 'lineage.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
