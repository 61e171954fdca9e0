import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, waitFor, type PlatformProcess } from './platform-process.js';
import { chromiumPath, launchChromium } from './browser.js';
import { skipWithout } from '../fixtures/prerequisite.js';

/**
 * End to end: the compiled CLI's `tributary up` on a fresh data dir (embedded log, lake, SQL, the
 * northwind and documents pipelines with their seeds, stream jobs, batch run and simulator),
 * driven through Debian's chromium exactly as a user would: paste the printed admin key, look at
 * the platform page, the pipeline pages, watch a live value move after posting sales events, then
 * stop the platform with SIGTERM. Needs `npm run build` first (`npm test` does it in pretest).
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const screenshots = path.join(repoRoot, 'test-artifacts', 'screenshots');
/** Seeding PGlite and the documents on a loaded 2-core machine takes a while. */
const startTimeoutMs = 90_000;
/** The first batch run (bronze → silver → gold) starts in the background once `up` is serving. */
const goldTimeoutMs = 60_000;
const liveTimeoutMs = 20_000;

interface KpiRow {
  total_revenue: number;
  order_count: number;
  customer_count: number;
  avg_order_value: number;
}
interface Rows<T> {
  rows: T[];
}
interface StatusBody {
  pipelines: { name: string; title?: string; state: string; jobs: string[] }[];
  jobs: { name: string; pipeline?: string; state: string }[];
}

/** The dashboard's number formats (src/ui/client/format.ts), restated so the test checks them. */
const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimalFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
function shown(value: number, format: 'number' | 'integer'): string {
  if (format === 'integer') return integerFormat.format(value);
  return Math.abs(value) >= 1000 ? integerFormat.format(value) : decimalFormat.format(value);
}
/** "1,046,973" → 1046973 */
function parseShown(text: string | null): number {
  const value = Number((text ?? '').replace(/,/g, ''));
  if (!Number.isFinite(value) || text === null || text.trim() === '' || text === '—')
    throw new Error(`tile shows ${JSON.stringify(text)}, not a number`);
  return value;
}

let platform: PlatformProcess;
let context: BrowserContext;
let userDataDir: string;

beforeAll(
  async () => {
    await mkdir(screenshots, { recursive: true });
    // Platform and browser start together: chromium's start overlaps the seeding.
    const browserDir = mkdtemp(path.join(os.tmpdir(), 'tributary-e2e-chromium-'));
    const [started, dir] = await Promise.all([startPlatform({ startTimeoutMs }), browserDir]);
    platform = started;
    userDataDir = dir;
    context = await launchChromium(userDataDir);
    // The pages read gold tables; wait for the first batch run to have written them.
    await waitFor('gold.kpi_summary after the first batch run', goldTimeoutMs, async () => {
      const body = await platform.api<Rows<KpiRow>>('/api/northwind/kpis');
      return body.rows.length > 0 ? true : undefined;
    });
  },
  startTimeoutMs + goldTimeoutMs + 30_000,
);

afterAll(async () => {
  await context?.close();
  await platform?.dispose();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

/** A page that records every console error and uncaught exception. */
async function openPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors };
}

/** Enters the admin key `up` wrote into the login form, as a user pastes the printed key. */
async function logIn(page: Page, hash = ''): Promise<void> {
  await page.goto(`${platform.url}/docs`);
  await page.evaluate(() => window.localStorage.clear());
  await page.goto(`${platform.url}/${hash}`);
  await page.waitForSelector('#login-form');
  await page.fill('#api-key', platform.adminKey);
  await page.click('#login-form button[type=submit]');
  await rendered(page, hash);
}

/**
 * Waits until the page has rendered (`body[data-ready]`) or shown its error card; an error card
 * fails the test with its text (after a screenshot, so the failure can be seen).
 */
async function rendered(page: Page, hash: string): Promise<void> {
  await page.waitForSelector('body[data-ready], #main .card.error');
  const card = page.locator('#main .card.error');
  if ((await card.count()) > 0) {
    const name = hash.replace(/^#\/p\//, '') || 'platform';
    await page.screenshot({ path: path.join(screenshots, `e2e-${name}-error.png`), fullPage: true });
    throw new Error(`page ${hash || '#/'} shows an error: ${await card.textContent()}`);
  }
}

interface PageSpec {
  id: string;
  tiles: { id: string; source: { route?: string; field?: string } }[];
  charts: { id: string; route?: string }[];
  tables?: { id: string; route: string }[];
}

/** Reads `a.b.0.c` out of a JSON value (the dashboard's own rule for tile fields). */
function pick(value: unknown, dotPath: string): unknown {
  let current = value;
  for (const part of dotPath.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/**
 * Every route a pipeline page reads answers 2xx on the running platform, and every tile's field
 * is present in its route's answer (else the tile shows "—" until an event fills it).
 */
async function checkPageSources(pageId: string): Promise<void> {
  const { pipelines } = await platform.api<{ pipelines: { page?: PageSpec }[] }>('/api/pipelines');
  const spec = pipelines.find((p) => p.page?.id === pageId)?.page;
  expect(spec, `page ${pageId} is registered`).toBeDefined();
  const problems: string[] = [];
  const routes = new Set<string>();
  for (const t of spec!.tiles) if (t.source.route) routes.add(t.source.route);
  for (const c of spec!.charts) if (c.route) routes.add(c.route);
  for (const t of spec!.tables ?? []) routes.add(t.route);
  const bodies = new Map<string, unknown>();
  for (const route of routes) {
    try {
      bodies.set(route, await platform.api<unknown>(route));
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  for (const t of spec!.tiles) {
    const { route, field } = t.source;
    if (route === undefined || field === undefined || !bodies.has(route)) continue;
    if (pick(bodies.get(route), field) === undefined)
      problems.push(
        `tile ${t.id}: field "${field}" is not in ${route}'s answer ${JSON.stringify(bodies.get(route)).slice(0, 200)}`,
      );
  }
  // Soft: the browser part still runs (and takes its screenshot) so a failure shows both views.
  expect.soft(problems, problems.join('\n')).toEqual([]);
}

async function tileText(page: Page, id: string): Promise<string | null> {
  return page.textContent(`#tile-${id} .tile-value`);
}

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('tributary up, end to end in chromium', () => {
  it('platform page shows the running pipelines, jobs and lake tables', async () => {
    const status = await platform.api<StatusBody>('/api/status');
    expect(status.pipelines.map((p) => p.name).sort()).toEqual([
      'documents',
      'movies',
      'northwind',
      'reviews',
      'viewing',
    ]);
    const { page, errors } = await openPage();
    await logIn(page);
    await page.waitForSelector('#live.live-live');
    expect(await tileText(page, 'pipelines')).toBe(`3 / 3`);
    expect(await tileText(page, 'jobs')).toMatch(/^\d+ \/ \d+$/);
    const [running, total] = (await tileText(page, 'jobs'))!.split(' / ').map(Number);
    expect(total).toBe(status.jobs.length);
    expect(running).toBe(total);
    expect(await page.locator('#jobs-table tbody tr').count()).toBe(status.jobs.length);
    const jobsText = await page.textContent('#jobs-table');
    for (const job of ['northwind.live_sales', 'documents.docproc', 'documents.embedding']) {
      expect(jobsText).toContain(job);
    }
    const pipelinesText = await page.textContent('#pipelines-table');
    expect(pipelinesText).toContain('Northwind sales');
    expect(pipelinesText).toContain('Documents');
    const tablesText = await page.textContent('#tables-table');
    for (const table of ['bronze.orders', 'silver.sales', 'gold.kpi_summary']) {
      expect(tablesText).toContain(table);
    }
    expect(Number(await page.getAttribute('#chart-lake svg', 'data-points'))).toBeGreaterThanOrEqual(10);
    // The first batch run checked silver.sales with its data-quality rules.
    expect(await page.textContent('#quality-table')).toContain('silver.sales');
    await page.screenshot({ path: path.join(screenshots, 'e2e-platform.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('northwind page shows the gold KPIs and the top countries', async () => {
    const kpis = (await platform.api<Rows<KpiRow>>('/api/tables/gold/kpi_summary')).rows[0];
    const top = (
      await platform.api<Rows<{ country: string; revenue: number; rank: number }>>(
        '/api/northwind/top-countries?limit=10',
      )
    ).rows;
    expect(kpis.order_count).toBeGreaterThan(0);
    expect(top.length).toBeGreaterThan(0);
    await checkPageSources('northwind');
    const { page, errors } = await openPage();
    await logIn(page, '#/p/northwind');
    expect(await page.textContent('#main h1')).toBe('Northwind sales');
    expect(await tileText(page, 'revenue')).toBe(shown(kpis.total_revenue, 'number'));
    expect(await tileText(page, 'orders')).toBe(shown(kpis.order_count, 'integer'));
    expect(await tileText(page, 'customers')).toBe(shown(kpis.customer_count, 'integer'));
    expect(await tileText(page, 'aov')).toBe(shown(kpis.avg_order_value, 'number'));
    // One bar per country, highest first, each titled "<country>: <revenue>".
    const bars = page.locator('#chart-top-countries rect.bar');
    expect(await bars.count()).toBe(top.length);
    expect(await bars.first().locator('title').textContent()).toBe(
      `${top[0].country.length > 12 ? `${top[0].country.slice(0, 11)}…` : top[0].country}: ${shown(top[0].revenue, 'number')}`,
    );
    const top3 = page.locator('#table-top3 tbody tr');
    expect(await top3.count()).toBe(Math.min(3, top.length));
    expect(await top3.first().textContent()).toContain(top[0].country);
    expect(Number((await tileText(page, 'quality-silver-sales'))?.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(await page.locator('#table-quality-silver-sales tbody tr').count()).toBe(9);
    for (const chart of ['categories', 'rfm']) {
      expect(await page.locator(`#chart-${chart} rect.bar`).count(), chart).toBeGreaterThan(0);
    }
    await page.screenshot({ path: path.join(screenshots, 'e2e-northwind.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('live sales posted to the ingest endpoint move the live tiles and chart', async () => {
    const { page, errors } = await openPage();
    await logIn(page, '#/p/northwind');
    await page.waitForSelector('#live.live-live');
    // Wait until both live tiles show numbers (from their route, or the simulator's SSE updates
    // five times a second), then read them. Totals only grow, so "after ≥ before + ours" holds
    // whatever the simulator adds meanwhile.
    await page.waitForFunction(
      () =>
        !['—', ''].includes(document.querySelector('#tile-live-count .tile-value')?.textContent ?? '') &&
        !['—', ''].includes(document.querySelector('#tile-live-revenue .tile-value')?.textContent ?? ''),
      undefined,
      { timeout: liveTimeoutMs },
    );
    const countBefore = parseShown(await tileText(page, 'live-count'));
    const revenueBefore = parseShown(await tileText(page, 'live-revenue'));
    // A country of its own, so its bar and rows can only come from these events.
    const pays = 'Atlantis';
    const amounts = [12_500, 30_000.25, 7_499.75, 50_000];
    const ourTotal = amounts.reduce((a, b) => a + b, 0);
    const now = Date.now();
    const events = amounts.map((montant, i) => ({
      order_id: 900_000_000 + i,
      product_id: 1 + i,
      pays,
      montant,
      ts: new Date(now + i).toISOString(),
    }));
    const posted = await platform.api<{ topic: string; records: number }>(
      '/api/ingest/topics/ventes-temps-reel/records',
      { method: 'POST', body: events },
    );
    expect(posted).toMatchObject({ topic: 'ventes-temps-reel', records: amounts.length });

    await page.waitForFunction(
      (label) =>
        Array.from(document.querySelectorAll('#chart-live rect.bar title')).some(
          (t) => t.textContent === label,
        ),
      `${pays}: ${shown(ourTotal, 'number')}`,
      { timeout: liveTimeoutMs },
    );
    await page.waitForFunction(
      (minimum) =>
        Number(
          (document.querySelector('#tile-live-count .tile-value')?.textContent ?? '').replace(/,/g, ''),
        ) >= minimum,
      countBefore + amounts.length,
      { timeout: liveTimeoutMs },
    );
    expect(parseShown(await tileText(page, 'live-revenue'))).toBeGreaterThanOrEqual(
      Math.floor(revenueBefore + ourTotal),
    );
    await page.screenshot({ path: path.join(screenshots, 'e2e-northwind-live.png'), fullPage: true });

    // The job commits its totals at the next checkpoint: the lake tables (and so the page's
    // batch + live table after a reload) then hold the country too.
    const live = await waitFor('Atlantis in gold.live_sales_by_country', liveTimeoutMs, async () => {
      const body =
        await platform.api<Rows<{ pays: string; total_ventes_live: number; nb_transactions: number }>>(
          '/api/northwind/live',
        );
      return body.rows.find((r) => r.pays === pays);
    });
    expect(live).toMatchObject({ total_ventes_live: ourTotal, nb_transactions: amounts.length });
    await waitFor('Atlantis in gold.revenue_by_country_combined', liveTimeoutMs, async () => {
      const body = await platform.api<Rows<{ country: string }>>('/api/northwind/revenue-by-country');
      return body.rows.some((r) => r.country === pays) ? true : undefined;
    });
    await page.reload();
    await rendered(page, '#/p/northwind');
    const combinedRow = page.locator('#table-combined tbody tr', { hasText: pays });
    expect(await combinedRow.count()).toBe(1);
    expect(await combinedRow.textContent()).toContain(shown(ourTotal, 'number'));
    await page.screenshot({ path: path.join(screenshots, 'e2e-northwind-reloaded.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('documents page renders the seeded documents', async () => {
    const counters = await waitFor('the six sample documents embedded', liveTimeoutMs, async () => {
      const body = await platform.api<{ uploads: number; embeddings: number }>('/api/documents/counters');
      return body.uploads === 6 && body.embeddings > 0 ? body : undefined;
    });
    await checkPageSources('documents');
    const { page, errors } = await openPage();
    await logIn(page, '#/p/documents');
    expect(await page.textContent('#main h1')).toBe('Documents');
    expect(await tileText(page, 'uploads')).toBe('6');
    expect(parseShown(await tileText(page, 'embeddings'))).toBeGreaterThanOrEqual(counters.embeddings);
    expect(Number(await page.getAttribute('#chart-uploads-per-minute svg', 'data-points'))).toBeGreaterThan(
      0,
    );
    expect(await page.locator('#chart-chunks-per-minute svg').count()).toBe(1);
    await page.screenshot({ path: path.join(screenshots, 'e2e-documents.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('lineage page draws what the running pipelines reported (source → topic → job → table)', async () => {
    interface Graph {
      nodes: { id: string; kind: string }[];
      edges: { from: string; to: string }[];
    }
    const expected = [
      'tributary://topic/ventes-temps-reel -> job:tributary/northwind.live_sales',
      'job:tributary/northwind.gold -> tributary://lake/gold.kpi_summary',
      'tributary://topic/documents.raw -> job:tributary/documents.docproc',
    ];
    const graph = await waitFor('lineage edges of both pipelines', liveTimeoutMs, async () => {
      const body = await platform.api<Graph>('/api/lineage');
      const edges = new Set(body.edges.map((e) => `${e.from} -> ${e.to}`));
      return expected.every((e) => edges.has(e)) ? body : undefined;
    });
    const { page, errors } = await openPage();
    await logIn(page, '#/p/lineage');
    expect(Number(await page.getAttribute('#chart-lineage-graph svg', 'data-nodes'))).toBeGreaterThanOrEqual(
      graph.nodes.length,
    );
    expect(await page.locator('.lineage-node[data-kind=source]').count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(screenshots, 'e2e-lineage.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('SIGTERM stops the platform gracefully: exit code 0 within 15 s', async () => {
    await context.close();
    const { code, signal, elapsedMs } = await platform.terminate('SIGTERM', 15_000);
    expect({ code, signal }, platform.stdout()).toEqual({ code: 0, signal: null });
    // `up` gives its services 10 s in all; the rest is process teardown.
    expect(elapsedMs).toBeLessThanOrEqual(12_000);
    expect(platform.stdout()).toContain('Stopped.');
    // Every service stopped within its share of the 10 s budget (a late one prints "(timed out)").
    expect(platform.stdout()).not.toContain('timed out');
    expect(platform.stdout()).toMatch(/✓ stopped pipeline northwind/);
    expect(existsSync(path.join(platform.dataDir, 'up.json'))).toBe(false);
  });
});
