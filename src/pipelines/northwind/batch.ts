import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stageTable, type PostgresTableReader } from './extract.js';
import { bronzeTables, checkIngestionDate, medallionJobs, type SqlBatchJobSpec } from './sql.js';

/**
 * Where the batch run writes: one run date's partition of each bronze, silver and gold table. `ParquetDirectory`
 * implements it over plain Parquet files; the lake layer's tables implement it with atomic
 * commits (see index.ts for the wiring).
 */
export interface NorthwindLake {
  /**
   * Replaces partition `ingestion_date=<date>` of `bronze.<table>` with the rows of `selectSql`
   * (a DuckDB SELECT over the staged extraction; it carries `_ingestion_timestamp` and `_source`).
   */
  replaceBronzePartition(table: string, ingestionDate: string, selectSql: string): Promise<void>;
  /** Runs a SQL job: each output, in order, replaces partition `ingestion_date=<job.ingestionDate>`. */
  runJob(job: SqlBatchJobSpec): Promise<void>;
}

export interface BronzeReport {
  ingestionDate: string;
  tables: { table: string; rows: number }[];
  rows: number;
  elapsedMs: number;
}

/** UTC date of a timestamp, the bronze partition value. */
export function ingestionDateOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

export interface BronzeOptions {
  reader: PostgresTableReader;
  lake: NorthwindLake;
  /** Extraction time (`_ingestion_timestamp`); default now. */
  now?: Date;
  /** Partition to replace; default the UTC date of `now`. A backfill labels today's snapshot with it. */
  ingestionDate?: string;
  stagingDir?: string;
}

/**
 * Bronze: the six tables of seed 001 from PostgreSQL to `bronze.<table>`, partition
 * `ingestion_date=<UTC date of now>`; a rerun the same day replaces that partition.
 */
export async function runBronze(options: BronzeOptions): Promise<BronzeReport> {
  const started = performance.now();
  const now = options.now ?? new Date();
  const ingestionDate = checkIngestionDate(options.ingestionDate ?? ingestionDateOf(now));
  const staging = options.stagingDir ?? (await mkdtemp(path.join(os.tmpdir(), 'northwind-bronze-')));
  try {
    const tables: { table: string; rows: number }[] = [];
    // One table at a time: the staged text of order_details is the largest thing held on disk.
    for (const table of bronzeTables) {
      const staged = await stageTable({
        reader: options.reader,
        table,
        outDir: staging,
        ingestionTimestamp: now,
      });
      try {
        await options.lake.replaceBronzePartition(`bronze.${table}`, ingestionDate, staged.selectSql);
      } finally {
        await rm(staged.csvFile, { force: true });
      }
      tables.push({ table: `bronze.${table}`, rows: staged.rows });
    }
    return {
      ingestionDate,
      tables,
      rows: tables.reduce((sum, t) => sum + t.rows, 0),
      elapsedMs: performance.now() - started,
    };
  } finally {
    if (options.stagingDir === undefined) await rm(staging, { recursive: true, force: true });
  }
}

export interface BatchReport {
  bronze: BronzeReport;
  silverGoldMs: number;
}

/** bronze → silver → gold for today (or `now`), in DAG order. */
export async function runNorthwindBatch(options: BronzeOptions): Promise<BatchReport> {
  const bronze = await runBronze(options);
  const started = performance.now();
  for (const job of medallionJobs(bronze.ingestionDate)) await options.lake.runJob(job);
  return { bronze, silverGoldMs: performance.now() - started };
}
