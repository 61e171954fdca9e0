import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import { LocalStorage, openLake, type Lake } from '../../src/lake/index.js';
import { createMemoryLog, type MemoryLog } from '../../src/log/index.js';
import { HashedEmbedder, RetrievalIndex } from '../../src/ml/index.js';
import {
  documentIndexDir,
  documentIndexSchema,
  documentsModule,
  documentsPage,
} from '../../src/pipelines/documents/index.js';
import type { PipelineServices } from '../../src/pipelines/types.js';
import { createLakeTableProvider, type TableProvider, type RunningServer } from '../../src/serve/index.js';
import { openSqlEngine, type SqlEngine } from '../../src/sql/index.js';
import { chromiumPath, openDashboard, serveDashboard, type ServedDashboard } from './browser.js';
import { skipWithout } from '../fixtures/prerequisite.js';

/**
 * The documents page's question box in a real browser (Debian's chromium via playwright-core):
 * the pipeline's `POST /api/documents/ask {question, filters: {company_id}}` (registerAskRoute)
 * answers from the pipeline's own retrieval index (src/ml, `index/documents` in the data dir)
 * holding a few small documents of two companies. The page is the pipeline's `documentsPage`.
 */
const repoRoot = path.resolve(import.meta.dirname, '../..');
const screenshots = path.join(repoRoot, 'test-artifacts', 'screenshots');

const documents = [
  {
    company: 'acme',
    filename: 'refund-policy.md',
    documentId: 'doc-acme-refunds',
    pages: [
      'Refunds are issued to the original payment method. A refund takes five business days after the returned item arrives at our warehouse.',
      'Shipping is free for orders over fifty euros. Express shipping takes one business day.',
    ],
  },
  {
    company: 'acme',
    filename: 'warranty <b>terms</b>.md',
    documentId: 'doc-acme-warranty',
    pages: [
      'Warranty claims are accepted for two years. <img src=x onerror="window.__injected=1"> Send the serial number with the claim.',
    ],
  },
  {
    company: 'globex',
    filename: 'globex-refunds.md',
    documentId: 'doc-globex-refunds',
    pages: ['Globex refunds take thirty days and are paid as store credit only.'],
  },
];

let dir: string;
let log: MemoryLog;
let lake: Lake;
let sql: SqlEngine;
let tables: TableProvider;
let dashboard: ServedDashboard | undefined;
let server: RunningServer;
let context: BrowserContext;
let keys: { admin: string; acme: string };

/** A gold daily_chunk_count table (the page's "Daily chunk report"), partitioned by company. */
async function writeDailyChunks(lake: Lake): Promise<void> {
  await lake
    .table('gold', 'daily_chunk_count')
    .writeQuery(
      ['acme', 'globex']
        .map(
          (company) =>
            `SELECT '${company}' AS company_id, DATE '2026-11-22' AS date, 'doc-${company}-refunds' AS document_id, 3::BIGINT AS total_chunks`,
        )
        .join(' UNION ALL '),
      { partitionBy: ['company_id'] },
    );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-ask-ui-'));
  await mkdir(screenshots, { recursive: true });

  const config = loadConfig({
    env: {},
    cwd: dir,
    dotenv: false,
    overrides: { dataDir: path.join(dir, 'data'), embeddingModel: 'hashed:128' },
  });
  // The pipeline's index, written where documentsModule reads it (hashed:128 embeddings both ways).
  const index = new RetrievalIndex({
    dir: documentIndexDir(config.dataDir),
    embedder: new HashedEmbedder({ dimensions: 128 }),
    schema: documentIndexSchema,
  });
  await index.upsert(
    documents.flatMap((d) =>
      d.pages.map((text, i) => ({
        id: `${d.documentId}#p${i + 1}c0`,
        text,
        metadata: { company_id: d.company, document_id: d.documentId, filename: d.filename, page: i + 1 },
      })),
    ),
  );
  await index.save();
  log = createMemoryLog();
  lake = await openLake({ storage: new LocalStorage(path.join(config.dataDir, 'lake')) });
  sql = await openSqlEngine(lake);
  const services: PipelineServices = {
    config,
    log,
    lake,
    query: (text, params) => sql.query(text, params),
    publish: () => undefined,
  };
  await writeDailyChunks(lake);
  tables = createLakeTableProvider({ lake, sql, tenantColumns: { 'gold.daily_chunk_count': 'company_id' } });
  dashboard = await serveDashboard(dir, { tables, pipelines: [documentsModule(services)] });
  ({ server, context } = dashboard);
  keys = {
    admin: dashboard.adminKey,
    acme: (await dashboard.keys.create({ scopes: ['read'], tenant: 'acme', name: 'acme reader' })).key,
  };
}, 120_000);

afterAll(async () => {
  await dashboard?.close();
  sql?.close();
  await lake?.close();
  await log?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function openDocumentsPage(key: string): Promise<{ page: Page; errors: string[] }> {
  const opened = await openDashboard(context, server.url, key, `#/p/${documentsPage.id}`);
  await opened.page.waitForSelector('#ask-documents');
  return opened;
}

async function askQuestion(page: Page, question: string, company?: string): Promise<void> {
  await page.fill('#ask-documents-question', question);
  if (company !== undefined) await page.fill('#ask-documents-company_id', company);
  await page.click('#ask-documents button[type=submit]');
  await page.waitForSelector('#ask-documents-result[data-state=answered]', { timeout: 15_000 });
}

describe.skipIf(
  skipWithout(existsSync(chromiumPath), `no chromium at ${chromiumPath} (apt-get install chromium)`),
)('documents question box in chromium', () => {
  it('answers with citations (document, page, chunk, score, snippet) for the chosen company', async () => {
    expect(documentsPage.ask?.route).toBe('/api/documents/ask');
    const { page, errors } = await openDocumentsPage(keys.admin);
    // A key without a tenant chooses the company.
    expect(await page.locator('#ask-documents-company_id').count()).toBe(1);
    await askQuestion(page, 'How long does a refund take?', 'acme');
    const answer = await page.textContent('#ask-documents-result .ask-answer');
    expect(answer).toMatch(/five business days/);
    const citations = page.locator('#ask-documents-result li.citation');
    expect(await citations.count()).toBeGreaterThanOrEqual(1);
    const first = citations.first();
    const field = (name: string) => first.locator(`[data-field=${name}] .citation-value`).textContent();
    expect(await field('filename')).toBe('refund-policy.md');
    expect(await field('page')).toBe('1');
    expect(await field('chunk_id')).toBe('doc-acme-refunds#p1c0');
    expect(await field('document_id')).toBe('doc-acme-refunds');
    expect(await first.locator('.citation-score').textContent()).toMatch(/^score \d+\.\d{3}$/);
    expect(await first.locator('.citation-text').textContent()).toContain(
      'A refund takes five business days',
    );
    // Only acme's documents: globex's refund terms are never cited.
    expect(await page.textContent('#ask-documents-result')).not.toContain('Globex');
    await page.screenshot({ path: path.join(screenshots, 'documents-ask.png'), fullPage: true });
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('shows retrieved markup as text, never as HTML', async () => {
    const { page, errors } = await openDocumentsPage(keys.admin);
    await askQuestion(page, 'How long are warranty claims accepted?', 'acme');
    const result = page.locator('#ask-documents-result');
    expect(await result.locator('img, b').count()).toBe(0);
    expect(await result.textContent()).toContain('<img src=x onerror="window.__injected=1">');
    expect(await result.locator('[data-field=filename] .citation-value').first().textContent()).toBe(
      'warranty <b>terms</b>.md',
    );
    expect(await page.evaluate(() => (window as unknown as { __injected?: number }).__injected)).toBe(
      undefined,
    );
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });

  it('a tenant-bound key asks within its tenant, without a company field', async () => {
    const { page, errors } = await openDocumentsPage(keys.acme);
    expect(await page.locator('#ask-documents-company_id').count()).toBe(0);
    expect(await page.textContent('#ask-documents .ask-tenant')).toBe('company: acme');
    await askQuestion(page, 'Globex refunds store credit thirty days');
    const files = await page
      .locator('#ask-documents-result [data-field=filename] .citation-value')
      .allTextContents();
    for (const file of files) expect(file).not.toBe('globex-refunds.md');
    expect(await page.textContent('#ask-documents-result')).not.toContain('store credit');
    expect(errors, errors.join('\n')).toEqual([]);
    await page.close();
  });
});
