import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultUpPlan } from '../../src/cli/commands/serve.js';
import { loadConfig } from '../../src/core/index.js';
import { runUp } from '../../src/serve/index.js';
import { sampleStatus, startFixture, type Fixture } from '../serve/fixture.js';
import { chromiumPath, launchChromium } from './browser.js';
import { skipWithout } from '../fixtures/prerequisite.js';

/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (no browser
 * download). The browser modules are compiled from src/ui/client first, so the test always runs
 * the current sources.
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const screenshots = path.join(repoRoot, 'test-artifacts', 'screenshots');

let f: Fixture;
let context: BrowserContext;
let userDataDir: string;
let tick = 0;

beforeAll(async () => {
  execFileSync(
    process.execPath,
    [
      path.join(repoRoot, 'node_modules/typescript/bin/tsc'),
      '-p',
      path.join(repoRoot, 'src/ui/client/tsconfig.json'),
    ],
    { stdio: 'inherit' },
  );
  await mkdir(screenshots, { recursive: true });
  f = await startFixture({
    statusTickMs: 250,
    status: {
      getStatus: () => {
        tick += 1;
        const status = sampleStatus(Date.now());
        status.jobs[0].throughputPerSecond = 400 + ((tick * 37) % 120);
        status.jobs[0].consumerLag = 10 + (tick % 7);
        return Promise.resolve(status);
      },
    },
  });
  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-chromium-'));
  context = await launchChromium(userDataDir);
}, 120_000);

afterAll(async () => {
  await context?.close();
  await f?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

/** Opens a page that fails the test on any console error or uncaught exception. */
async function openPage(viewport?: {
  width: number;
  height: number;
}): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors };
}

async function logIn(page: Page, key: string): Promise<void> {
  // The browser profile is shared between tests: start each one logged out. The storage is
  // cleared from /docs, which never uses the key, so no dashboard request races the clearing.
  await page.goto(`${f.url}/docs`);
  await page.evaluate(() => window.localStorage.clear());
  await page.goto(`${f.url}/`);
  await page.waitForSelector('#login-form');
  await page.fill('#api-key', key);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('body[data-ready]');
}

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('dashboard in chromium', () => {
  it('platform page renders status, lake and live values without console errors', async () => {
    const { page, errors } = await openPage();
    await logIn(page, f.keys.admin);
    await page.waitForSelector('#live.live-live');
    expect(await page.textContent('#tile-pipelines .tile-value')).toBe('2 / 2');
    expect(await page.textContent('#tile-dlq .tile-value')).toBe('2');
    const lakeBars = await page.getAttribute('#chart-lake svg', 'data-points');
    expect(Number(lakeBars)).toBe(3);
    expect(await page.locator('#tables-table tbody tr').count()).toBe(3);
    expect(await page.locator('#jobs-table tbody tr').count()).toBe(2);
    expect(await page.locator('#sources-table tbody tr').count()).toBe(1);
    expect(await page.textContent('#sources-table')).toContain('bad.csv: undecodable');
    // Live: status ticks arrive over SSE and move the throughput tile and chart.
    const before = await page.textContent('#tile-throughput .tile-value');
    await page.waitForFunction(
      (value) => document.querySelector('#tile-throughput .tile-value')?.textContent !== value,
      before,
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      () => Number(document.querySelector('#chart-throughput svg')?.getAttribute('data-points')) >= 3,
      undefined,
      { timeout: 10_000 },
    );
    await page.screenshot({ path: path.join(screenshots, 'platform-laptop.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('pipeline page draws its charts from gold tables and updates from events', async () => {
    const { page, errors } = await openPage();
    await logIn(page, f.keys.admin);
    await page.click('nav a[data-page=sales]');
    await page.waitForFunction(() => document.querySelector('#chart-orders-per-minute svg') !== null);
    await page.waitForFunction(
      () =>
        document.body.dataset.ready !== undefined && document.querySelector('#table-latest table') !== null,
    );
    expect(Number(await page.getAttribute('#chart-orders-per-minute svg', 'data-points'))).toBe(60);
    expect(Number(await page.getAttribute('#chart-revenue-per-minute svg', 'data-points'))).toBe(30);
    expect(await page.locator('#chart-revenue-per-minute rect.bar').count()).toBe(30);
    expect(await page.locator('#table-latest tbody tr').count()).toBe(10);
    await page.waitForSelector('#live.live-live');
    const before = await page.textContent('#tile-orders-total .tile-value');
    expect(before).not.toBe('—');
    f.api.events.publish({
      type: 'window.sales',
      data: { window_start: '2026-11-22T11:00:00.000Z', orders: 9876, revenue: 4321.5 },
    });
    await page.waitForFunction(
      () => document.querySelector('#tile-orders-total .tile-value')?.textContent === '9,876',
      undefined,
      { timeout: 10_000 },
    );
    expect(await page.textContent('#tile-revenue .tile-value')).toBe('4,322');
    await page.waitForFunction(
      () => document.querySelector('#chart-orders-per-minute svg')?.getAttribute('data-points') === '60',
    );
    await page.screenshot({ path: path.join(screenshots, 'pipeline-sales-laptop.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('is readable on a phone', async () => {
    const { page, errors } = await openPage({ width: 390, height: 844 });
    await logIn(page, f.keys.admin);
    await page.waitForSelector('#chart-lake svg');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(screenshots, 'platform-phone.png'), fullPage: true });
    await page.goto(`${f.url}/#/p/sales`);
    await page.waitForFunction(() => document.querySelector('#chart-orders-per-minute svg') !== null);
    await page.screenshot({ path: path.join(screenshots, 'pipeline-sales-phone.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('tenant keys see only their pipeline data', async () => {
    const { page, errors } = await openPage();
    await logIn(page, f.keys.acme);
    expect(await page.locator('#jobs-table tbody tr').count()).toBe(1);
    expect(await page.locator('#tables-table tbody tr').count()).toBe(2);
    expect(await page.textContent('#tables-table')).not.toContain('globex');
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('asks for a key again when the stored one is refused', async () => {
    const { page } = await openPage();
    await page.goto(`${f.url}/`);
    await page.evaluate(() =>
      window.localStorage.setItem(
        'tributary.apiKey',
        'trb_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      ),
    );
    await page.reload();
    await page.waitForSelector('#login-form .error-text');
    expect(await page.textContent('#login-form .error-text')).toContain('refused');
    await page.close();
  });

  it('a fresh `up` (lake service, stream status, empty data dir) shows an empty platform page', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tributary-up-ui-'));
    const config = loadConfig({ env: {}, cwd: dataDir, dotenv: false, overrides: { dataDir, port: 0 } });
    const plan = await defaultUpPlan(config);
    const handle = await runUp({
      config,
      services: plan.services,
      app: plan.app!,
      out: { write: () => true },
      handleSignals: false,
    });
    try {
      const { page, errors } = await openPage();
      await page.goto(`${handle.url}/docs`);
      await page.evaluate(() => window.localStorage.clear());
      await page.goto(`${handle.url}/`);
      await page.fill('#api-key', handle.createdAdminKey!);
      await page.click('#login-form button[type=submit]');
      await page.waitForSelector('body[data-ready]');
      expect(await page.textContent('#tile-pipelines .tile-value')).toBe('0 / 0');
      expect(await page.textContent('#tables-table')).toContain('nothing yet');
      await page.waitForSelector('#live.live-live');
      await page.screenshot({ path: path.join(screenshots, 'platform-fresh-up.png'), fullPage: true });
      expect(errors, errors.join('\n')).toEqual([]);
      await page.close();
    } finally {
      await handle.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('docs page renders the OpenAPI document', async () => {
    const { page, errors } = await openPage();
    await page.goto(`${f.url}/docs`);
    await page.waitForSelector('details.operation');
    expect(await page.locator('details.operation').count()).toBeGreaterThanOrEqual(10);
    expect(await page.textContent('#docs')).toContain('/api/tables/{layer}/{name}');
    await page.screenshot({ path: path.join(screenshots, 'docs.png'), fullPage: false });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});
