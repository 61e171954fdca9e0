// Pipeline `reviews` (seed 000): a Flume-like spooling directory of Amazon reviews → the log
// (`reviews.raw`) → a raw zone by ingestion date (bronze) → normalised, de-duplicated reviews with
// sentiment (silver) → per-product, daily and star-vs-text aggregates (gold); questions are
// answered from the reviews with citations.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  createEmbedder,
  createSentimentModel,
  indexSink,
  llmConfigOf,
  RetrievalIndex,
  retrievalIndexDir,
} from '../../ml/index.js';
import { registerAskRoute } from '../../serve/index.js';
import { resolvePipelineSettings, type PipelineSettingsSpec } from '../settings.js';
import { tableRowCount } from '../tables.js';
import type { PipelineDefinition, PipelineServices } from '../types.js';
import { writeDemoReviews } from './demo.js';
import { refreshGold, reviewGoldJob } from './gold.js';
import { rawTopic, reviewIngestJob, tables as reviewTables, type ScoredReview } from './jobs.js';
import { reviewsModule } from './routes.js';

export const pipelineName = 'reviews';

/** Partitions of `reviews.raw`, keyed by product (the ingest job scales out to this many tasks). */
export const rawTopicPartitions = 4;

export const reviewsSettings = {
  spoolDir: {
    env: ['REVIEWS_SPOOL_DIR'],
    flag: '--spool-dir <dir>',
    description: 'spool directory of review files (default <dataDir>/spool/reviews)',
    schema: z.string().min(1),
  },
} satisfies PipelineSettingsSpec;

/** The spool directory: `REVIEWS_SPOOL_DIR` (or `run reviews --spool-dir`), else `<dataDir>/spool/reviews`. */
export function reviewsSpoolDir(services: Pick<PipelineServices, 'config'>, env = process.env): string {
  const { spoolDir } = resolvePipelineSettings(pipelineName, reviewsSettings, services.config, env);
  return spoolDir ?? path.join(services.config.dataDir, 'spool', 'reviews');
}

/**
 * The reviews' retrieval index: review-sized passages (long reviews split), filterable by product
 * and rating; citations carry review id, product, rating and the passage.
 */
const indexes = new WeakMap<PipelineServices, RetrievalIndex>();
function reviewIndex(services: PipelineServices): RetrievalIndex {
  let index = indexes.get(services);
  if (index === undefined) {
    index = new RetrievalIndex({
      dir: retrievalIndexDir(services.config.dataDir, pipelineName),
      embedder: createEmbedder(services.config),
      schema: {
        // A long review is split: a citation names its passage and the review it comes from.
        citationId: 'passage_id',
        citationFields: ['review_id', 'product_id', 'rating', 'sentiment_score'],
        noMatchAnswer: 'There are no reviews of product {product_id}.',
      },
      chunk: { maxChars: 1200 },
      llm: llmConfigOf(services.config),
    });
    indexes.set(services, index);
  }
  return index;
}

/** Spool source options: every layout in one directory, bad lines forwarded to quarantine. */
export function reviewsSpoolOptions(dir: string) {
  return {
    dir,
    topic: rawTopic,
    keyField: 'asin,parent_asin,ProductId',
    badRecords: 'forward' as const,
    stableMs: 500,
    pollIntervalMs: 500,
  };
}

export const reviewsPipeline: PipelineDefinition = {
  name: pipelineName,
  title: 'Product reviews',
  description:
    'Spool directory of Amazon reviews → reviews.raw → raw zone → sentiment → gold; RAG over reviews',
  async jobs(services) {
    await services.log.ensureTopic(rawTopic, { partitions: rawTopicPartitions });
    const sentiment = createSentimentModel(services.config.sentimentModel);
    const index = reviewIndex(services);
    const toIndex = indexSink(
      index,
      (r: ScoredReview) => ({
        id: r.review_id,
        text: r.title === null ? r.text : `${r.title}. ${r.text}`,
        metadata: {
          review_id: r.review_id,
          product_id: r.product_id,
          ...(r.rating === null ? {} : { rating: r.rating }),
          sentiment_score: Math.round(r.sentiment_score * 1000) / 1000,
        },
      }),
      'index:reviews',
    );
    return {
      stream: [
        reviewIngestJob({ log: services.log, lake: services.lake, sentiment, acceptedSinks: [toIndex] }),
      ],
      batch: [reviewGoldJob(services.lake)],
      close: () => index.save(),
    };
  },
  serve: (services) => {
    const module = reviewsModule(services);
    return {
      ...module,
      routes(api) {
        module.routes?.(api);
        registerAskRoute(api, { pipeline: pipelineName, index: reviewIndex(services), what: 'reviews' });
      },
    };
  },
  settings: reviewsSettings,
  sources: (services) => [
    { name: 'spool', kind: 'spool', options: reviewsSpoolOptions(reviewsSpoolDir(services)) },
  ],
  async report(services) {
    const count = (table: string) => tableRowCount(services, table);
    const [raw, accepted, quarantined, duplicates] = await Promise.all([
      count(reviewTables.bronze),
      count(reviewTables.silver),
      count(reviewTables.quarantine),
      count(reviewTables.duplicates),
    ]);
    const dir = reviewsSpoolDir(services);
    const names = existsSync(dir) ? await readdir(dir) : [];
    const failedDir = path.join(dir, 'failed');
    const refused = existsSync(failedDir)
      ? (await readdir(failedDir)).filter((n) => !n.endsWith('.reason')).length
      : 0;
    const done = names.filter((n) => n.endsWith('.COMPLETED')).length;
    return [
      `files: ${done} done, ${refused} refused`,
      `records: ${raw} in = ${accepted} accepted + ${quarantined} quarantined + ${duplicates} duplicates${raw === accepted + quarantined + duplicates ? '' : ' (DOES NOT RECONCILE)'}`,
    ];
  },
  async seedDemo(services, progress) {
    const dir = reviewsSpoolDir(services);
    // Only into an empty (or missing) spool directory: a user's own files are never mixed with demo data.
    if (existsSync(dir) && (await readdir(dir)).length > 0) return;
    const written = await writeDemoReviews(dir);
    progress?.(
      `reviews: ${written.files.length} demo files (${written.reviews} reviews, ${written.badLines} bad lines, ${written.unreadableFiles} unreadable file) in ${dir}`,
    );
  },
};

export { refreshGold };
export {
  normaliseReview,
  parsePythonLiteral,
  reviewFormats,
  type Review,
  type ReviewFormat,
} from './formats.js';
export { writeDemoReviews, demoProducts, type DemoReviewFiles } from './demo.js';
export { reviewsModule } from './routes.js';
export {
  reviewIngestJob,
  rawTopic,
  tables as reviewTables,
  type ScoredReview,
  // the job's per-record steps, for the reviews.transform benchmark
  decodeRawReview,
  classify as classifyReview,
  acceptReview,
  silverRow,
} from './jobs.js';
