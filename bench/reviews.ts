import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSpoolSource } from '../src/connectors/index.js';
import { seededRandom } from '../src/core/index.js';
import { LocalStorage, openLake, quoteLiteral } from '../src/lake/index.js';
import { openEmbeddedLog } from '../src/log/index.js';
import type { LogRecord } from '../src/log/index.js';
import { VaderSentiment } from '../src/ml/index.js';
import { VaderReference } from '../src/ml/sentiment/testing/vader-reference.js';
import {
  acceptReview,
  classifyReview,
  decodeRawReview,
  rawTopic,
  reviewIngestJob,
  silverRow,
  reviewsSpoolOptions,
  reviewTables,
} from '../src/pipelines/reviews/index.js';
import { runJob } from '../src/stream/index.js';
import { withDuckDB } from './duckdb.js';
import type { BenchContext, Benchmark, BenchResult } from './types.js';

const words = (
  'the battery lasts long and charging is quick but the strap broke after a week which was ' +
  'disappointing overall it is bright light and comfortable great value for the price I would ' +
  'buy again terrible support never answered my emails the zipper keeps jamming in the cold ' +
  'excellent build quality solid and well made love it works perfectly'
).split(' ');

/** A review text of 100 words from the word list above. */
function reviewText(random: () => number): string {
  const text: string[] = [];
  for (let w = 0; w < 100; w++) text.push(words[Math.floor(random() * words.length)]);
  return `${text.join(' ')}.`;
}

/** `count` Amazon-2023 review lines of about 100 words each, from a seed. */
function reviewLines(count: number, first: number, random: () => number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const text = reviewText(random);
    lines.push(
      JSON.stringify({
        rating: 1 + Math.floor(random() * 5),
        title: 'Review',
        text,
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
 * The ceiling the lake's Parquet files set on this machine: DuckDB alone (both cores) encoding the
 * same reviews as the two tables every accepted review is written to, `bronze.reviews` (the line
 * verbatim, file, line, outcome) and `silver.product_reviews` (the normalised columns and a
 * sentiment), zstd like the lake, from tables already in DuckDB's memory: no JSON parsing,
 * sentiment, de-duplication, log or commit. Reviews/s for both files.
 */
async function duckdbParquetRate(spool: string, outDir: string, reviews: number): Promise<number> {
  const files = quoteLiteral(path.join(spool, '*.jsonl'));
  await mkdir(outDir, { recursive: true });
  try {
    return await withDuckDB(async (connection) => {
      await connection.run(
        `CREATE TABLE bronze AS SELECT line AS raw, filename AS source_file, 1 AS source_line, 'accepted' AS outcome
           FROM read_csv(${files}, columns = {'line': 'VARCHAR'}, header = false, delim = '\x01', quote = '', escape = '', filename = true)`,
      );
      await connection.run(
        `CREATE TABLE silver AS SELECT user_id || ':' || asin AS review_id, asin AS product_id, user_id, rating,
             title, text, make_timestamp(timestamp * 1000) AS review_ts, filename AS source_file, 1 AS source_line,
             'amazon-2023' AS source_format, 0.5::DOUBLE AS sentiment_score, 'positive' AS sentiment_label,
             0.9::DOUBLE AS sentiment_confidence, '2026-12-04' AS dt
           FROM read_json(${files}, format = 'newline_delimited', filename = true)`,
      );
      const started = performance.now();
      for (const table of ['bronze', 'silver'])
        await connection.run(
          `COPY ${table} TO ${quoteLiteral(path.join(outDir, `${table}.parquet`))} (FORMAT parquet, COMPRESSION zstd)`,
        );
      return reviews / ((performance.now() - started) / 1000);
    });
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

/**
 * reviews.ingest: spool files of 100-word reviews → `reviews.raw` (embedded log, group fsync) →
 * the pipeline's ingest job (normalise, de-duplicate, VADER sentiment) → `silver.product_reviews`
 * committed, plus the raw zone, in one bounded run. Baseline, same files and run: the spool source
 * alone into its own log. Also printed: `duckdb_parquet_reviews_per_s`, DuckDB alone encoding the
 * same reviews as the bronze and silver Parquet files (duckdbParquetRate), the rate the lake's
 * files alone allow here.
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

  context.progress('ceiling: DuckDB alone encoding the bronze and silver Parquet files');
  const duckdbParquet = await duckdbParquetRate(spool, path.join(context.dir, 'duckdb-parquet'), total);

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
      duckdb_parquet_reviews_per_s: duckdbParquet,
    };
  } finally {
    await log.close();
    await lake.close();
  }
}

/**
 * Calls `fn` over `items` repeatedly for `durationMs` after a warm-up: items per second of wall
 * time, and per second of this process's CPU time (the steadier figure on a shared machine).
 */
function rateOf<T>(
  items: readonly T[],
  fn: (item: T) => number,
  durationMs = 3000,
): { perSecond: number; perCpuSecond: number } {
  let sink = 0;
  for (let i = 0; i < Math.min(items.length, 2000); i++) sink += fn(items[i]); // JIT warm-up
  let n = 0;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (const item of items) sink += fn(item);
    n += items.length;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  if (Number.isNaN(sink)) throw new Error('unreachable: keeps the loop from being optimised away');
  return { perSecond: n / seconds, perCpuSecond: n / ((cpu.user + cpu.system) / 1e6) };
}

/**
 * reviews.sentiment: VADER on 100-word reviews (the ingest benchmark's texts) on one core, the
 * pipeline's sentiment pass alone. Baseline, same texts and run: the previous string-based VADER
 * (`src/ml/sentiment/testing/vader-reference.ts`), whose scores the current one reproduces exactly.
 */
function reviewsSentiment(context: BenchContext): Promise<BenchResult> {
  const random = seededRandom(17);
  const texts = Array.from({ length: 20_000 }, () => reviewText(random));
  const model = new VaderSentiment();
  const previous = new VaderReference();
  for (const text of texts.slice(0, 200)) {
    if (model.scoreSync(text).score !== previous.scores(text).compound) {
      throw new Error(`the two implementations disagree on ${JSON.stringify(text)}`);
    }
  }
  context.progress('scoring 100-word reviews with VADER');
  const ours = rateOf(texts, (t) => model.scoreSync(t).score);
  context.progress('scoring the same reviews with the previous VADER implementation');
  const before = rateOf(texts, (t) => previous.scores(t).compound);
  return Promise.resolve({
    value: ours.perSecond,
    unit: 'reviews/s',
    baseline: before.perSecond,
    baseline_name: 'previous (string-based) VADER reviews/s',
    ratio: ours.perSecond / before.perSecond,
    value_per_cpu_second: ours.perCpuSecond,
    baseline_per_cpu_second: before.perCpuSecond,
    goal: '>= 300,000 reviews/s (a third of a core at the ingest goal of 100,000/s)',
    words_per_review: 100,
  });
}

/**
 * reviews.transform: the ingest job's per-record work without the engine, log or lake — decode a
 * `reviews.raw` record (value and spool headers), parse and normalise it, score it and shape its
 * `silver.product_reviews` row — on 100-word Amazon-2023 lines. This is the ceiling of the
 * pipeline's own code; the rest of `reviews.ingest` is the log, the engine and the lake sink.
 * Baseline, same records and run: `JSON.parse` of the record's text alone.
 */
function reviewsTransform(context: BenchContext): Promise<BenchResult> {
  const random = seededRandom(17);
  const lines = reviewLines(20_000, 0, random).trimEnd().split('\n');
  const file = Buffer.from('reviews-0.jsonl');
  const records: LogRecord[] = lines.map((line, i) => ({
    topic: rawTopic,
    partition: 0,
    offset: i,
    timestamp: 1_700_000_000_000,
    key: null,
    value: Buffer.from(line),
    headers: { 'tributary.file': file, 'tributary.line': Buffer.from(String(i + 1)) },
  }));
  const model = new VaderSentiment();
  context.progress('decode → normalise → sentiment → silver row, per record');
  const ours = rateOf(records, (record) => {
    const routed = acceptReview(classifyReview(decodeRawReview(record)), model.scoreSync.bind(model));
    return routed.kind === 'accepted' ? silverRow(routed.review).sentiment_score : 0;
  });
  context.progress('baseline: JSON.parse of the same records');
  const parse = rateOf(lines, (line) => (JSON.parse(line) as { rating: number }).rating);
  return Promise.resolve({
    value: ours.perSecond,
    unit: 'reviews/s',
    baseline: parse.perSecond,
    baseline_name: 'JSON.parse of the same lines records/s',
    ratio: ours.perSecond / parse.perSecond,
    value_per_cpu_second: ours.perCpuSecond,
    baseline_per_cpu_second: parse.perCpuSecond,
    goal: '>= 200,000 reviews/s (half a core at the ingest goal of 100,000/s)',
    words_per_review: 100,
  });
}

export const reviewsBenchmarks: Benchmark[] = [
  {
    name: 'reviews.sentiment',
    description: 'VADER on 100-word reviews, one core, vs the previous implementation on the same texts',
    run: reviewsSentiment,
  },
  {
    name: 'reviews.transform',
    description:
      'the ingest job per record (decode, normalise, VADER, silver row) without log, engine or lake',
    run: reviewsTransform,
  },
  {
    name: 'reviews.ingest',
    description: 'spool files of 100-word reviews → log → normalise + dedup + VADER → silver.product_reviews',
    run: reviewsIngest,
  },
];
