// Pipeline `reviews` (seed 000): a Flume-like spooling directory of Amazon reviews → the log
// (`reviews.raw`) → a raw zone by ingestion date (bronze) → normalised, de-duplicated reviews with
// sentiment (silver) → per-product, daily and star-vs-text aggregates (gold); questions are
// answered from the reviews with citations.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { createSentimentModel } from '../../ml/index.js';
import type { PipelineDefinition, PipelineServices } from '../types.js';
import { writeDemoReviews } from './demo.js';
import { refreshGold, reviewGoldJob } from './gold.js';
import { rawTopic, reviewIngestJob } from './jobs.js';
import { reviewsModule } from './routes.js';

export const pipelineName = 'reviews';

/** Partitions of `reviews.raw`, keyed by product (the ingest job scales out to this many tasks). */
export const rawTopicPartitions = 4;

/**
 * The spool directory: `REVIEWS_SPOOL_DIR` (or `run reviews --spool-dir`), else
 * `<dataDir>/spool/reviews`.
 */
export function reviewsSpoolDir(services: Pick<PipelineServices, 'config'>, env = process.env): string {
  return env.REVIEWS_SPOOL_DIR || path.join(services.config.dataDir, 'spool', 'reviews');
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
    return {
      stream: [reviewIngestJob({ log: services.log, lake: services.lake, sentiment })],
      batch: [reviewGoldJob(services.lake)],
    };
  },
  serve: (services) => reviewsModule(services),
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
export { reviewIngestJob, rawTopic, tables as reviewTables, type ScoredReview } from './jobs.js';
