import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import pg from 'pg';
import { expect } from 'vitest';
import { LocalStorage, openLake, type Lake } from '../../../src/lake/index.js';
import {
  runNorthwindBatch,
  type BatchReport,
  type NorthwindLake,
} from '../../../src/pipelines/northwind/batch.js';
import { lakeTarget } from '../../../src/pipelines/northwind/lake-target.js';
import type { PostgresTableReader } from '../../../src/pipelines/northwind/extract.js';
import { ParquetDirectory } from '../../../src/pipelines/northwind/parquet-dir.js';
import { latestPartitionOf, partitionOf } from '../../../src/pipelines/northwind/sql.js';
import type { ReferenceGold } from './reference.js';

export const realPgUrl = process.env.NORTHWIND_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Null when the server does not answer; the caller skips with a message. */
export async function reachablePg(url: string): Promise<pg.Client | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return client;
  } catch {
    await client.end().catch(() => undefined);
    return null;
  }
}

/** A throwaway database on a real server, dropped by `drop()`. */
export async function scratchDatabase(admin: pg.Client, url: string, name: string) {
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  const target = new URL(url);
  target.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: target.toString() });
  await client.connect();
  return {
    client,
    url: target.toString(),
    async drop() {
      await client.end().catch(() => undefined);
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    },
  };
}

export interface PipelineRun {
  duck: DuckDBConnection;
  target: NorthwindLake;
  report: BatchReport;
  /** Runs bronze → silver → gold again into the same lake. */
  rerun(now: Date): Promise<BatchReport>;
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * Runs the batch pipeline into a fresh lake: the platform lake (atomic commits, `kind: 'lake'`)
 * or a bare directory of Parquet files (`kind: 'directory'`, the benchmark's baseline).
 */
export async function runPipeline(
  reader: PostgresTableReader,
  now: Date,
  kind: 'lake' | 'directory',
): Promise<PipelineRun> {
  const instance = await DuckDBInstance.create(':memory:');
  const duck = await instance.connect();
  const root = await mkdtemp(path.join(os.tmpdir(), 'northwind-test-'));
  let lake: Lake | null = null;
  let target: NorthwindLake;
  if (kind === 'lake') {
    lake = await openLake({ storage: new LocalStorage(path.join(root, 'lake')) });
    target = lakeTarget(lake);
  } else {
    target = new ParquetDirectory(duck, path.join(root, 'lake'));
  }
  const refresh = async () => {
    if (lake !== null) await lake.prepareViews(duck);
  };
  const report = await runNorthwindBatch({ reader, lake: target, now });
  await refresh();
  return {
    duck,
    target,
    report,
    async rerun(at: Date) {
      const again = await runNorthwindBatch({ reader, lake: target, now: at });
      await refresh();
      return again;
    },
    async rows<T>(sql: string) {
      return (await duck.runAndReadAll(sql)).getRowObjectsJson() as T[];
    },
    async close() {
      duck.closeSync();
      instance.closeSync();
      await lake?.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Gold tables equal the independent PostgreSQL computation, to the cent and per customer. Reads
 * one run date's partition (default the latest).
 */
export async function expectGoldMatches(run: PipelineRun, ref: ReferenceGold, date?: string): Promise<void> {
  const of = (table: string) => (date === undefined ? latestPartitionOf(table) : partitionOf(table, date));
  const [kpi] = await run.rows<Record<string, string>>(`SELECT * FROM ${of('gold.kpi_summary')}`);
  expect(kpi).toEqual({
    total_revenue: ref.totalRevenue,
    order_count: String(ref.orderCount),
    customer_count: String(ref.customerCount),
    avg_order_value: ref.avgOrderValue,
  });
  const countries = await run.rows<{ country: string; revenue: string; rank: number }>(
    `SELECT country, revenue, "rank" FROM ${of('gold.top_countries')} ORDER BY "rank"`,
  );
  expect(countries).toEqual(ref.countries);
  const categories = await run.rows<{ category_name: string; revenue: string; share: number }>(
    `SELECT category_name, revenue, share FROM ${of('gold.category_sales')} ORDER BY category_name`,
  );
  expect(categories.map(({ category_name, revenue }) => ({ category_name, revenue }))).toEqual(
    ref.categories,
  );
  const shareSum = categories.reduce((sum, c) => sum + c.share, 0);
  expect(Math.abs(shareSum - 1)).toBeLessThan(1e-5);
  const rfm = await run.rows<Record<string, string | number>>(
    `SELECT customer_id, recency_days, frequency, monetary, r_score, f_score, m_score, segment FROM ${of('gold.customer_rfm')}`,
  );
  expect(rfm.length).toBe(ref.rfm.size);
  for (const row of rfm) {
    const expected = ref.rfm.get(row.customer_id as string);
    expect(expected, `customer ${row.customer_id}`).toBeDefined();
    expect({
      recency_days: row.recency_days,
      frequency: row.frequency,
      monetary: row.monetary,
      r_score: row.r_score,
      f_score: row.f_score,
      m_score: row.m_score,
    }).toEqual(expected);
  }
  const [quarantine] = await run.rows<{ n: string }>(
    `SELECT count(*) AS n FROM ${of('silver.sales_quarantine')}`,
  );
  expect(Number(quarantine?.n)).toBe(ref.quarantined);
}
