import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, launchChromium, openDashboard } from './browser.js';
import { startPlatform, waitFor, type PlatformProcess } from './platform-process.js';
import { skipWithout } from '../fixtures/prerequisite.js';

/**
 * The reviews page's question box in chromium against the real platform: the compiled CLI's
 * `tributary up` on a fresh data dir drops the demo reviews into the spool directory, the ingest
 * job indexes them, and the box posts `{question, filters: {product_id}}` to
 * `POST /api/reviews/ask` (registerAskRoute). Needs `npm run build` first.
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const screenshots = path.join(repoRoot, 'test-artifacts', 'screenshots');
/** Seeding every pipeline's demo data on a loaded 2-core machine takes a while. */
const startTimeoutMs = 120_000;
/** The spool → ingest → index path under `up` (the spool polls every 500 ms; files roll when idle). */
const indexedTimeoutMs = 120_000;
/** The demo's outdoor gear: all four have reviews about their battery. */
const gear = ['B10EARBUD', 'B00HEADLMP', 'B01TENT2P', 'B02STOVE1'];
const question = 'How long does the battery last?';

interface AskAnswer {
  answer: string;
  citations: Record<string, unknown>[];
  mode: string;
}

let platform: PlatformProcess;
let context: BrowserContext;
let userDataDir: string;

beforeAll(
  async () => {
    await mkdir(screenshots, { recursive: true });
    const browserDir = mkdtemp(path.join(os.tmpdir(), 'tributary-reviews-chromium-'));
    const [started, dir] = await Promise.all([startPlatform({ startTimeoutMs }), browserDir]);
    platform = started;
    userDataDir = dir;
    context = await launchChromium(userDataDir);
    // The demo reviews are indexed once the ask route cites reviews of every gear product.
    await waitFor('the demo reviews in the reviews index', indexedTimeoutMs, async () => {
      for (const product of gear) {
        const body = await platform.api<AskAnswer>('/api/reviews/ask', {
          method: 'POST',
          body: { question, filters: { product_id: product } },
        });
        if (body.citations.length === 0) return undefined;
      }
      return true;
    });
    // The box suggests products from gold.product_sentiment, which follows silver's commits.
    await waitFor('gold.product_sentiment', indexedTimeoutMs, async () => {
      const body = await platform.api<{ rows: { product_id: string }[] }>('/api/reviews/products?limit=1000');
      return gear.every((id) => body.rows.some((r) => r.product_id === id)) ? true : undefined;
    });
  },
  startTimeoutMs + 2 * indexedTimeoutMs + 30_000,
);

afterAll(async () => {
  await context?.close();
  await platform?.dispose();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

async function openReviewsPage(): Promise<{ page: Page; errors: string[] }> {
  const opened = await openDashboard(context, platform.url, platform.adminKey, '#/p/reviews');
  await opened.page.waitForSelector('#ask-reviews');
  return opened;
}

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('reviews question box in chromium (tributary up)', () => {
  it('answers with cited reviews of the chosen product only', async () => {
    // A product the same question without a filter does not cite: only the filter can bring
    // its reviews into the answer.
    const unfiltered = await platform.api<AskAnswer>('/api/reviews/ask', {
      method: 'POST',
      body: { question },
    });
    expect(unfiltered.citations.length).toBeGreaterThan(0);
    const product = gear.find((id) => !unfiltered.citations.some((c) => c.product_id === id))!;
    expect(product, JSON.stringify(unfiltered.citations)).toBeDefined();

    const { page, errors } = await openReviewsPage();
    // The product input suggests the products of gold.product_sentiment.
    await page.waitForSelector(`#ask-reviews-product_id-options option[value="${product}"]`, {
      state: 'attached',
    });
    const posted: unknown[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/api/reviews/ask')) posted.push(request.postDataJSON());
    });
    await page.fill('#ask-reviews-question', question);
    await page.fill('#ask-reviews-product_id', product);
    await page.click('#ask-reviews button[type=submit]');
    await page.waitForSelector('#ask-reviews-result[data-state=answered]', { timeout: 30_000 });
    expect(posted).toEqual([{ question, filters: { product_id: product } }]);

    const answer = await page.textContent('#ask-reviews-result .ask-answer');
    expect(answer).toMatch(/battery/i);
    expect(answer).toMatch(/\[1\]/);
    const citations = page.locator('#ask-reviews-result li.citation');
    const count = await citations.count();
    expect(count).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < count; i++) {
      const citation = citations.nth(i);
      const field = (name: string) => citation.locator(`[data-field=${name}] .citation-value`).textContent();
      expect(await field('product_id')).toBe(product);
      expect(await field('review_id')).toMatch(/^(h:[0-9a-f]{24}|fine-food:\d+)$/);
      expect(await field('rating')).toMatch(/^[1-5]$/);
      expect(await citation.locator('.citation-score').textContent()).toMatch(/^score \d+\.\d{3}$/);
      expect((await citation.locator('.citation-text').textContent())!.length).toBeGreaterThan(10);
    }
    await page.screenshot({ path: path.join(screenshots, 'reviews-ask.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('says so for a product without reviews instead of citing others', async () => {
    const { page, errors } = await openReviewsPage();
    await page.fill('#ask-reviews-question', question);
    await page.fill('#ask-reviews-product_id', 'B99NOSUCH');
    await page.click('#ask-reviews button[type=submit]');
    await page.waitForSelector('#ask-reviews-result[data-state=answered]', { timeout: 30_000 });
    expect(await page.textContent('#ask-reviews-result .ask-answer')).toBe(
      'There are no reviews of product B99NOSUCH.',
    );
    expect(await page.locator('#ask-reviews-result li.citation').count()).toBe(0);
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});
