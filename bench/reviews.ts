import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSpoolSource } from '../src/connectors/index.js';
import { seededRandom } from '../src/core/index.js';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { openEmbeddedLog } from '../src/log/index.js';
import { VaderSentiment } from '../src/ml/index.js';
import {
  rawTopic,
  reviewIngestJob,
  reviewsSpoolOptions,
  reviewTables,
} from '../src/pipelines/reviews/index.js';
import { runJob } from '../src/stream/index.js';
import type { BenchContext, Benchmark, BenchResult } from './types.js';

const words = (
  'the battery lasts long and charging is quick but the strap broke after a week which was ' +
  'disappointing overall it is bright light and comfortable great value for the price I would ' +
  'buy again terrible support never answered my emails the zipper keeps jamming in the cold ' +
  'excellent build quality solid and well made love it works perfectly'
).split(' ');

/** `count` Amazon-2023 review lines of about 100 words each, from a seed. */
function reviewLines(count: number, first: number, random: () => number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const text: string[] = [];
    for (let w = 0; w < 100; w++) text.push(words[Math.floor(random() * words.length)]);
    lines.push(
      JSON.stringify({
        rating: 1 + Math.floor(random() * 5),
        title: 'Review',
        text: `${text.join(' ')}.`,
        images: [],
        asin: `B${String(Math.floor(random() * 500)).padStart(6, '0')}`,
        parent_asin: null,
        user_id: `U${first + i}`,
        timestamp: 1_700_000_000_000 + (first + i) * 1000,
        helpful_vote: 0,
        verified_purchase: true,
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * reviews.ingest: spool files of 100-word reviews → `reviews.raw` (embedded log, group fsync) →
 * the pipeline's ingest job (normalise, de-duplicate, VADER sentiment) → `silver.product_reviews`
 * committed, plus the raw zone, in one bounded run. Baseline, same files and run: the spool source
 * alone into its own log.
 */
async function reviewsIngest(context: BenchContext): Promise<BenchResult> {
  const total = Number(process.env.TRIBUTARY_BENCH_REVIEWS ?? 200_000);
  const files = 4;
  const random = seededRandom(17);
  const spool = path.join(context.dir, 'spool');
  await mkdir(spool, { recursive: true });
  context.progress(
    `writing ${files} files × ${(total / files).toLocaleString('en-US')} reviews of 100 words`,
  );
  for (let f = 0; f < files; f++) {
    await writeFile(
      path.join(spool, `reviews-${f}.jsonl`),
      reviewLines(total / files, f * (total / files), random),
    );
  }
  const baselineSpool = path.join(context.dir, 'spool-baseline');
  await cp(spool, baselineSpool, { recursive: true });

  context.progress('baseline: the spool source alone');
  const baselineLog = await openEmbeddedLog({ dir: path.join(context.dir, 'log-baseline') });
  let baseline: number;
  try {
    await baselineLog.createTopic(rawTopic, { partitions: 4 });
    const source = createSpoolSource(
      { ...reviewsSpoolOptions(baselineSpool), stableMs: 0 },
      { log: baselineLog },
    );
    const started = performance.now();
    const report = await source.poll();
    baseline = report.records / ((performance.now() - started) / 1000);
  } finally {
    await baselineLog.close();
  }

  context.progress('spool → reviews.raw → ingest job → silver (sentiment included)');
  const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log') });
  const lake = await openLake({ storage: new LocalStorage(path.join(context.dir, 'lake')) });
  try {
    await log.createTopic(rawTopic, { partitions: 4 });
    const started = performance.now();
    const report = await createSpoolSource({ ...reviewsSpoolOptions(spool), stableMs: 0 }, { log }).poll();
    const status = await runJob(reviewIngestJob({ log, lake, sentiment: new VaderSentiment() }), {
      dataDir: path.join(context.dir, 'state'),
      once: true,
    });
    const seconds = (performance.now() - started) / 1000;
    const silver = await lake.table(reviewTables.silver).snapshot();
    const rows = silver?.files.reduce((n, f) => n + f.rows, 0) ?? 0;
    if (report.records !== total || rows !== total || status.state !== 'finished') {
      throw new Error(
        `spooled ${report.records}, silver holds ${rows} rows, job ${status.state}; expected ${total}`,
      );
    }
    const value = rows / seconds;
    return {
      value,
      unit: 'reviews/s',
      baseline,
      baseline_name: 'spool source alone (same files) records/s',
      ratio: value / baseline,
      goal: '>= 100,000 reviews/s',
      reviews: rows,
      words_per_review: 100,
    };
  } finally {
    await log.close();
    await lake.close();
  }
}

export const reviewsBenchmarks: Benchmark[] = [
  {
    name: 'reviews.ingest',
    description: 'spool files of 100-word reviews → log → normalise + dedup + VADER → silver.product_reviews',
    run: reviewsIngest,
  },
];
