import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createSpoolSource, CsvParser } from '../src/connectors/index.js';
import { LocalStorage, openLake, quoteLiteral } from '../src/lake/index.js';
import { openEmbeddedLog } from '../src/log/index.js';
import {
  generateViewing,
  toCsv,
  viewingSpoolOptions,
  viewingTables,
  viewingTopics,
  viewingValidateJob,
} from '../src/pipelines/viewing/index.js';
import { runJob } from '../src/stream/index.js';
import { withDuckDB } from './duckdb.js';
import type { BenchContext, Benchmark, BenchResult } from './types.js';

/**
 * viewing.ingest: a CSV file of generated viewing events → spool source → `viewing.events`
 * (embedded log, group fsync) → the validation job (rules, dedup) → `bronze.viewing_events`
 * partitioned by event_date / show_type / user_bucket, committed. Baseline, same file and run:
 * the platform's CSV parser alone over the file's text.
 *
 * Also printed, as the ceiling of the lake layout on this machine: DuckDB alone reading the same
 * CSV and writing it as Parquet in the same three-level partitioning (`duckdb_layout_events_per_s`),
 * with no validation, dedup, log or commit. Its `user_bucket` is DuckDB's hash mod 16 (it has no
 * murmur2): the same number of partitions, not the same assignment. And the same without the
 * partitioning, all rows in one Parquet file (`duckdb_single_file_events_per_s`).
 */
async function duckdbLayoutRate(
  file: string,
  outDir: string,
  rows: number,
  partitioned: boolean,
): Promise<number> {
  const target = partitioned
    ? `${quoteLiteral(outDir)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date, show_type, user_bucket))`
    : `${quoteLiteral(path.join(outDir, 'events.parquet'))} (FORMAT parquet, COMPRESSION zstd)`;
  if (!partitioned) await mkdir(outDir, { recursive: true });
  try {
    return await withDuckDB(async (connection) => {
      const started = performance.now();
      await connection.run(
        `COPY (SELECT *, CAST(CAST(event_ts AS TIMESTAMPTZ) AS DATE) AS event_date, hash(user_id) % 16 AS user_bucket
           FROM read_csv(${quoteLiteral(file)}, header = true, all_varchar = true))
         TO ${target}`,
      );
      return rows / ((performance.now() - started) / 1000);
    });
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

async function viewingIngest(context: BenchContext): Promise<BenchResult> {
  const users = Number(process.env.TRIBUTARY_BENCH_VIEWING_USERS ?? 4000);
  const spool = path.join(context.dir, 'spool');
  await mkdir(spool, { recursive: true });
  const file = path.join(spool, 'events.csv');
  // Generated data is dropped before the measured run: its objects would otherwise stay on the
  // heap the pipeline's garbage collector has to walk.
  const { records: recordCount, valid: validCount } = await (async () => {
    const set = generateViewing({ users, days: 14, seed: 3, badPerReason: 0, duplicates: 0 });
    await writeFile(file, toCsv(set.records));
    return { records: set.records.length, valid: set.valid.length };
  })();
  context.progress(`${recordCount.toLocaleString('en-US')} events in one CSV file`);

  const baseline = await (async () => {
    const text = await readFile(file, 'utf8');
    const parser = new CsvParser();
    const baselineStart = performance.now();
    let rows = parser.push(text).length;
    rows += parser.end().length;
    return (rows - 1) / ((performance.now() - baselineStart) / 1000);
  })();

  // Before the run: the spool source renames the file when it is done with it.
  const duckdbLayout = await duckdbLayoutRate(
    file,
    path.join(context.dir, 'duckdb-layout'),
    recordCount,
    true,
  );
  const duckdbSingleFile = await duckdbLayoutRate(
    file,
    path.join(context.dir, 'duckdb-single'),
    recordCount,
    false,
  );

  const log = await openEmbeddedLog({ dir: path.join(context.dir, 'log') });
  const lake = await openLake({ storage: new LocalStorage(path.join(context.dir, 'lake')) });
  try {
    await log.createTopic(viewingTopics.events, { partitions: 4 });
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    const report = await createSpoolSource({ ...viewingSpoolOptions(spool), stableMs: 0 }, { log }).poll();
    const spoolSeconds = (performance.now() - started) / 1000;
    await runJob(viewingValidateJob({ log, lake }), { dataDir: path.join(context.dir, 'state'), once: true });
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const snapshot = await lake.table(viewingTables.bronze).snapshot();
    const committed = snapshot?.files.reduce((n, f) => n + f.rows, 0) ?? 0;
    if (report.records !== recordCount || committed !== validCount) {
      throw new Error(`spooled ${report.records}, bronze holds ${committed}; expected ${validCount}`);
    }
    const value = committed / seconds;
    return {
      value,
      unit: 'events/s',
      baseline,
      baseline_name: 'CSV parse alone (same file) rows/s',
      ratio: value / baseline,
      goal: '>= 500,000 events/s',
      events: committed,
      files: snapshot?.files.length ?? 0,
      duckdb_layout_events_per_s: duckdbLayout,
      duckdb_single_file_events_per_s: duckdbSingleFile,
      spool_s: spoolSeconds,
      job_s: seconds - spoolSeconds,
      // Process CPU time (all threads, DuckDB's included): wall time swings on a shared machine.
      cpu_s: (cpu.user + cpu.system) / 1e6,
      load_avg_1m: os.loadavg()[0],
    };
  } finally {
    await log.close();
    await lake.close();
  }
}

export const viewingBenchmarks: Benchmark[] = [
  {
    name: 'viewing.ingest',
    description:
      'CSV viewing events → spool → log → validation and dedup → bronze by date / show type / user bucket',
    run: viewingIngest,
  },
];
