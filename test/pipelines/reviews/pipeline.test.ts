import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, rootLogger } from '../../../src/core/index.js';
import { createSpoolSource } from '../../../src/connectors/index.js';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import { createMemoryLog, type Log } from '../../../src/log/index.js';
import { VaderSentiment, type SentimentModel, type SentimentResult } from '../../../src/ml/index.js';
import {
  rawTopic,
  refreshGold,
  reviewIngestJob,
  reviewTables as tables,
  writeDemoReviews,
} from '../../../src/pipelines/reviews/index.js';
import { reviewsSpoolOptions } from '../../../src/pipelines/reviews/index.js';
import { openSqlEngine, type SqlEngine } from '../../../src/sql/index.js';
import { createApp, KeyStore, startServer } from '../../../src/serve/index.js';
import { reviewsPipeline } from '../../../src/pipelines/reviews/index.js';
import { pipelineAppOptions, type PipelineServices } from '../../../src/pipelines/index.js';
import { runJob } from '../../../src/stream/index.js';

const logger = rootLogger.child({}, { level: 'silent' });

let dir: string;
let spool: string;
let lake: Lake;
let sql: SqlEngine;
let log: Log;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tributary-reviews-'));
  spool = path.join(dir, 'spool');
  await mkdir(spool);
  lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
  sql = await openSqlEngine(lake);
  log = createMemoryLog();
  await log.createTopic(rawTopic, { partitions: 4 });
});
afterEach(async () => {
  sql.close();
  await lake.close();
  await rm(dir, { recursive: true, force: true });
});

/** Delivers every complete file of the spool, runs the job to the end of its input, then gold. */
async function ingest(): Promise<{ done: string[]; refused: string[] }> {
  const source = createSpoolSource({ ...reviewsSpoolOptions(spool), stableMs: 0 }, { log, logger });
  const report = await source.poll();
  await runJob(reviewIngestJob({ log, lake, sentiment: new VaderSentiment() }), {
    dataDir: path.join(dir, 'state'),
    once: true,
  });
  await refreshGold(lake, `test-${Date.now()}`);
  return {
    done: report.files.filter((f) => f.outcome === 'completed').map((f) => f.name),
    refused: report.files.filter((f) => f.outcome === 'failed').map((f) => f.name),
  };
}

const rows = (text: string) => sql.query(text);

const line2014 = (o: Record<string, unknown>) =>
  JSON.stringify({
    reviewerID: 'A1',
    asin: 'P1',
    reviewerName: 'Ann',
    helpful: [0, 0],
    reviewText: 'Great lamp, bright and light.',
    overall: 5,
    summary: 'Love it',
    unixReviewTime: 1_700_000_000,
    reviewTime: '11 14, 2023',
    ...o,
  });

describe('reviews pipeline: golden run over every layout and fault', () => {
  it('lands exact rows in bronze, silver, quarantine and gold; a second run adds nothing', async () => {
    await writeFile(
      path.join(spool, 'a-2014.jsonl'),
      [
        line2014({}),
        line2014({ reviewerID: 'A2', reviewText: 'Terrible, it broke after a day. Awful.', overall: 1 }),
        "{'reviewerID': 'A3', 'asin': 'P2', 'reviewText': 'It\\'s okay I guess.', 'overall': 3.0, 'summary': 'Meh', 'unixReviewTime': 1700086400}",
        '{"reviewerID": "A4", "asin": "P1", "reviewText": "cut off',
        line2014({ reviewerID: 'A5', reviewText: '   ' }),
        line2014({ reviewerID: 'A6', overall: 9 }),
      ].join('\n'),
    );
    await writeFile(
      path.join(spool, 'b-2023.jsonl.gz'),
      gzipSync(
        [
          JSON.stringify({
            rating: 4,
            title: 'Nice',
            text: 'Good value and works well.',
            images: [],
            asin: 'P2',
            parent_asin: 'P2',
            user_id: 'U1',
            timestamp: 1_700_172_800_000,
            helpful_vote: 0,
            verified_purchase: true,
          }),
          line2014({}), // the same review as a-2014.jsonl line 1: a duplicate
          JSON.stringify({ sku: 'X', comment: 'not a review' }),
        ].join('\n'),
      ),
    );
    await writeFile(
      path.join(spool, 'c-fine-food.csv'),
      [
        'Id,ProductId,UserId,ProfileName,HelpfulnessNumerator,HelpfulnessDenominator,Score,Time,Summary,Text',
        '1,P3,U7,Bo,1,1,5,1700259200,Tasty,"Delicious, rich and fresh."',
        '2,P3,U8,Cy,0,0,2,1700259200,Stale,"Stale and bland, I hated it."',
        '1,P3,U7,Bo,1,1,5,1700259200,Tasty,"Delicious, rich and fresh."',
        'broken,row',
      ].join('\n'),
    );
    await writeFile(path.join(spool, 'd-damaged.jsonl.gz'), gzipSync('{"a":1}\n'.repeat(50)).subarray(0, 30));

    const first = await ingest();
    expect(first).toEqual({
      done: ['a-2014.jsonl', 'b-2023.jsonl.gz', 'c-fine-food.csv'],
      refused: ['d-damaged.jsonl.gz'],
    });
    const failed = await readdir(path.join(spool, 'failed'));
    expect(failed.sort()).toEqual(['d-damaged.jsonl.gz', 'd-damaged.jsonl.gz.reason']);

    const bronze = await rows(
      `SELECT source_file, source_line, outcome, dt FROM ${tables.bronze} ORDER BY 1, 2`,
    );
    expect(bronze.map((r) => [r.source_file, r.source_line, r.outcome])).toEqual([
      ['a-2014.jsonl', 1, 'accepted'],
      ['a-2014.jsonl', 2, 'accepted'],
      ['a-2014.jsonl', 3, 'accepted'],
      ['a-2014.jsonl', 4, 'quarantined'],
      ['a-2014.jsonl', 5, 'quarantined'],
      ['a-2014.jsonl', 6, 'quarantined'],
      ['b-2023.jsonl.gz', 1, 'accepted'],
      ['b-2023.jsonl.gz', 2, 'duplicate'],
      ['b-2023.jsonl.gz', 3, 'quarantined'],
      ['c-fine-food.csv', 2, 'accepted'],
      ['c-fine-food.csv', 3, 'accepted'],
      ['c-fine-food.csv', 4, 'duplicate'],
      ['c-fine-food.csv', 5, 'quarantined'],
    ]);
    const today = new Date().toISOString().slice(0, 10);
    expect(new Set(bronze.map((r) => r.dt))).toEqual(new Set([today]));

    const silver = await rows(
      `SELECT review_id, product_id, user_id, rating, title, text, epoch_ms(review_ts) AS ts, source_format,
              sentiment_label FROM ${tables.silver} ORDER BY source_file, source_line`,
    );
    expect(
      silver.map((r) => [r.product_id, r.user_id, r.rating, r.source_format, r.sentiment_label]),
    ).toEqual([
      ['P1', 'A1', 5, 'amazon-2014', 'positive'],
      ['P1', 'A2', 1, 'amazon-2014', 'negative'],
      ['P2', 'A3', 3, 'amazon-2014', 'positive'],
      ['P2', 'U1', 4, 'amazon-2023', 'positive'],
      ['P3', 'U7', 5, 'fine-food-csv', 'positive'],
      ['P3', 'U8', 2, 'fine-food-csv', 'negative'],
    ]);
    expect(silver[2].text).toBe("It's okay I guess.");
    expect(Number(silver[3].ts)).toBe(1_700_172_800_000);
    expect(Number(silver[0].ts)).toBe(1_700_000_000_000);
    expect(silver[4].review_id).toBe('fine-food:1');
    expect(String(silver[0].review_id)).toMatch(/^h:[0-9a-f]{24}$/);

    const quarantine = await rows(
      `SELECT source_file, source_line, split_part(reason, ':', 1) AS reason FROM ${tables.quarantine} ORDER BY 1, 2`,
    );
    expect(quarantine.map((r) => [r.source_file, r.source_line, r.reason])).toEqual([
      ['a-2014.jsonl', 4, 'invalid_json'],
      ['a-2014.jsonl', 5, 'missing_text'],
      ['a-2014.jsonl', 6, 'rating_out_of_range'],
      ['b-2023.jsonl.gz', 3, 'unknown_layout'],
      ['c-fine-food.csv', 5, 'malformed_record'],
    ]);
    const duplicates = await rows(`SELECT source_file, source_line FROM ${tables.duplicates} ORDER BY 1, 2`);
    expect(duplicates.map((r) => [r.source_file, r.source_line])).toEqual([
      ['b-2023.jsonl.gz', 2],
      ['c-fine-food.csv', 4],
    ]);

    // Gold, recomputed independently from the silver rows checked above.
    const products = await rows(
      `SELECT product_id, reviews, avg_rating, positive_share, negative_share FROM ${tables.productSentiment} ORDER BY 1`,
    );
    expect(products).toEqual([
      { product_id: 'P1', reviews: 2, avg_rating: 3, positive_share: 0.5, negative_share: 0.5 },
      { product_id: 'P2', reviews: 2, avg_rating: 3.5, positive_share: 1, negative_share: 0 },
      { product_id: 'P3', reviews: 2, avg_rating: 3.5, positive_share: 0.5, negative_share: 0.5 },
    ]);
    const byRating = await rows(`SELECT rating, reviews FROM ${tables.ratingVsSentiment} ORDER BY 1`);
    expect(byRating.map((r) => [r.rating, r.reviews])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 2],
    ]);
    const daily = await rows(
      `SELECT CAST(date AS VARCHAR) AS date, reviews FROM ${tables.sentimentDaily} ORDER BY 1`,
    );
    expect(daily.map((r) => [r.date, r.reviews])).toEqual([
      ['2023-11-14', 2],
      ['2023-11-15', 1],
      ['2023-11-16', 1],
      ['2023-11-17', 2],
    ]);

    // The same files dropped again under new names: every row is a duplicate, silver is unchanged.
    const again = path.join(spool, 'again.jsonl');
    await writeFile(
      again,
      [
        line2014({}),
        line2014({ reviewerID: 'A2', reviewText: 'Terrible, it broke after a day. Awful.', overall: 1 }),
      ].join('\n'),
    );
    await ingest();
    expect(await rows(`SELECT count(*) AS n FROM ${tables.silver}`)).toEqual([{ n: 6 }]);
    expect(await rows(`SELECT count(*) AS n FROM ${tables.duplicates}`)).toEqual([{ n: 4 }]);
    // A second run over nothing new changes nothing.
    const before = await lake.table(tables.silver).snapshot();
    await ingest();
    expect((await lake.table(tables.silver).snapshot())?.version).toBe(before?.version);
  });

  it('an asynchronous model scores in batches; a text it refuses dead-letters its own review only', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => (i === 17 ? 'poison text' : `review number ${i}`));
    await writeFile(
      path.join(spool, 'c-2023.jsonl'),
      texts
        .map((text, i) =>
          JSON.stringify({
            rating: 5,
            title: 't',
            text,
            asin: `P${i % 3}`,
            user_id: `U${i}`,
            timestamp: 1_700_000_000_000 + i,
          }),
        )
        .join('\n'),
    );
    const batches: number[] = [];
    const refused: number[] = [];
    const single: string[] = [];
    const result = (text: string): SentimentResult => ({
      score: text.length / 100,
      label: 'positive',
      confidence: 1,
    });
    const model: SentimentModel = {
      name: 'batching-fake',
      score(text) {
        single.push(text);
        return text.startsWith('poison')
          ? Promise.reject(new Error('the model refused it'))
          : Promise.resolve(result(text));
      },
      scoreBatch(batch) {
        batches.push(batch.length);
        if (!batch.some((t) => t.startsWith('poison'))) return Promise.resolve(batch.map(result));
        refused.push(batch.length);
        return Promise.reject(new Error('the model refused the batch'));
      },
    };
    await createSpoolSource({ ...reviewsSpoolOptions(spool), stableMs: 0 }, { log, logger }).poll();
    const status = await runJob(reviewIngestJob({ log, lake, sentiment: model }), {
      dataDir: path.join(dir, 'state'),
      once: true,
    });
    // One call per batch of at most 32 candidates; only the refused batch is retried text by text.
    expect(batches.reduce((a, b) => a + b, 0)).toBe(40);
    expect(Math.max(...batches)).toBeLessThanOrEqual(32);
    expect(batches.length).toBeLessThan(40);
    expect(single).toContain('poison text');
    expect(refused).toHaveLength(1);
    expect(single).toHaveLength(refused[0]);
    expect(status.counters).toMatchObject({ in: 40, dlq: 1 });
    const silver = await rows(`SELECT text, sentiment_score FROM ${tables.silver} ORDER BY source_line`);
    expect(silver.map((r) => r.text)).toEqual(texts.filter((t) => t !== 'poison text'));
    expect(silver.every((r) => Number(r.sentiment_score) === String(r.text).length / 100)).toBe(true);
    const dlq = (
      await Promise.all([0, 1, 2, 3].map((p) => log.fetch(`${rawTopic}.dlq`, p, 0).catch(() => [])))
    ).flat();
    expect(dlq.map((r) => Buffer.from(r.value!).toString())).toEqual([
      expect.stringContaining('poison text'),
    ]);
  });

  it('demo data: every path shows, and the counts reconcile (in = accepted + quarantined + duplicates)', async () => {
    const demo = await writeDemoReviews(spool, { reviewsPerFormat: 120, seed: 3 });
    const report = await ingest();
    expect(report.refused).toEqual(['upload-interrupted.jsonl.gz']);
    const [counts] = await rows(`SELECT
        (SELECT count(*) FROM ${tables.bronze}) AS bronze,
        (SELECT count(*) FROM ${tables.silver}) AS silver,
        (SELECT count(*) FROM ${tables.quarantine}) AS quarantine,
        (SELECT count(*) FROM ${tables.duplicates}) AS duplicates`);
    expect(counts).toEqual({
      bronze: demo.reviews + demo.badLines,
      silver: demo.reviews - demo.duplicates,
      quarantine: demo.badLines,
      duplicates: demo.duplicates,
    });
    const formats = await rows(`SELECT DISTINCT source_format FROM ${tables.silver} ORDER BY 1`);
    expect(formats.map((r) => r.source_format)).toEqual(['amazon-2014', 'amazon-2023', 'fine-food-csv']);
  });

  it('serves products, reviews, daily trend, stars vs sentiment and quarantine behind read keys', async () => {
    const demo = await writeDemoReviews(spool, { reviewsPerFormat: 60, seed: 5 });
    const keys = KeyStore.open(path.join(dir, 'keys.json'));
    const readKey = (await keys.create({ scopes: ['read'] })).key;
    // Built as `tributary up` builds it.
    const services: PipelineServices = {
      config: loadConfig({ env: {}, dotenv: false, cwd: dir, overrides: { dataDir: dir } }),
      log,
      lake,
      query: (text, params) => sql.query(text, params),
      publish: () => undefined,
    };
    const api = createApp({
      keys,
      ...pipelineAppOptions({ definitions: [reviewsPipeline], services, sql }),
      statusTickMs: 0,
      ui: false,
    });
    const server = await startServer(api.app);
    const get = async (route: string, key: string | null = readKey) => {
      const response = await fetch(
        `${server.url}${route}`,
        key === null ? {} : { headers: { authorization: `Bearer ${key}` } },
      );
      return {
        status: response.status,
        body: (await response.json()) as { rows: Record<string, unknown>[] } & Record<string, unknown>,
      };
    };
    try {
      // Before anything is ingested the routes answer empty, not with an error.
      expect((await get('/api/reviews/summary')).body.rows).toEqual([
        { accepted: 0, avg_sentiment: null, quarantined: 0, duplicates: 0 },
      ]);
      expect((await get('/api/reviews/products')).body.rows).toEqual([]);
      await ingest();
      expect((await get('/api/reviews/summary', null)).status).toBe(401);
      const summary = (await get('/api/reviews/summary')).body.rows[0];
      expect(summary).toMatchObject({
        accepted: demo.reviews - demo.duplicates,
        quarantined: demo.badLines,
        duplicates: demo.duplicates,
      });
      const worst = (await get('/api/reviews/products?sort=worst&limit=3')).body.rows;
      const best = (await get('/api/reviews/products?sort=best&limit=3')).body.rows;
      expect(worst).toHaveLength(3);
      expect(Number(worst[0].avg_sentiment)).toBeLessThan(Number(best[0].avg_sentiment));
      const product = String(best[0].product_id);
      const answer = await get(`/api/reviews/products/${product}/reviews?limit=5`);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      const page = answer.body.rows;
      expect(page).toHaveLength(5);
      expect(page.every((r) => r.product_id === product)).toBe(true);
      const unknown = await get('/api/reviews/products/NOPE/reviews');
      expect(unknown.status).toBe(404);
      expect(unknown.body).toEqual({ error: { code: 'NOT_FOUND', message: 'no reviews of product "NOPE"' } });
      expect((await get('/api/reviews/daily')).body.rows.length).toBeGreaterThan(5);
      expect((await get('/api/reviews/rating-vs-sentiment')).body.rows.map((r) => r.rating)).toEqual([
        1, 2, 3, 4, 5,
      ]);
      const reasons = (await get('/api/reviews/quarantine')).body.rows.map((r) => r.reason).sort();
      expect(reasons).toEqual([
        'invalid_json',
        'malformed_record',
        'missing_text',
        'rating_out_of_range',
        'unknown_layout',
      ]);
      const openapi = JSON.stringify((await get('/openapi.json')).body);
      expect(openapi).toContain('/api/reviews/products/{productId}/reviews');
    } finally {
      await api.close();
      await server.close(100);
    }
  });
});
