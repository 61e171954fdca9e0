import { rm } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBDataChunk, timestampValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { withDuckDB } from './duckdb.js';
import { median } from './stats.js';
import type { BenchContext, BenchResult, Benchmark } from './types.js';

const recordCount = 500_000;
const rounds = 5;

interface BenchRecord {
  id: number;
  user: string;
  amount: number;
  country: string;
  ts: Date;
}

function makeRecords(): BenchRecord[] {
  const countries = ['DE', 'FR', 'ES', 'US', 'BR', 'JP', 'IN'];
  const base = Date.UTC(2026, 10, 22);
  return Array.from({ length: recordCount }, (_, i) => ({
    id: i,
    user: `user-${i % 10_000}`,
    amount: (i % 1000) * 1.25,
    country: countries[i % countries.length],
    ts: new Date(base + i * 17),
  }));
}

/**
 * Baseline: the bare path with no table layer: the same JS records through DuckDB's Appender
 * (data chunks, types known up front) and one `COPY … TO` Parquet (zstd). No schema inference, no
 * value checks, no publish/fsync, no manifest. DuckDB is started before the timer, as the lake is
 * opened before ours: both sides time the write only.
 */
async function baseline(connection: DuckDBConnection, records: BenchRecord[], file: string): Promise<void> {
  await connection.run(
    'CREATE TABLE t (id DOUBLE, "user" VARCHAR, amount DOUBLE, country VARCHAR, ts TIMESTAMP)',
  );
  const appender = await connection.createAppender('t');
  const types = [0, 1, 2, 3, 4].map((i) => appender.columnType(i));
  for (let start = 0; start < records.length; start += 2048) {
    const end = Math.min(records.length, start + 2048);
    const columns: DuckDBValue[][] = [[], [], [], [], []];
    for (let i = start; i < end; i++) {
      const r = records[i];
      columns[0].push(r.id);
      columns[1].push(r.user);
      columns[2].push(r.amount);
      columns[3].push(r.country);
      columns[4].push(timestampValue(BigInt(r.ts.getTime()) * 1000n));
    }
    const chunk = DuckDBDataChunk.create(types, end - start);
    chunk.setColumns(columns);
    appender.appendDataChunk(chunk);
  }
  appender.closeSync();
  await connection.run(`COPY t TO '${file}' (FORMAT parquet, COMPRESSION zstd)`);
}

async function runLakeWrite(context: BenchContext): Promise<BenchResult> {
  const records = makeRecords();
  const ours: number[] = [];
  const bare: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const lakeDir = path.join(context.dir, `lake-${round}`);
    const lake = await openLake({ storage: new LocalStorage(lakeDir) });
    let started = performance.now();
    const result = await lake
      .table('silver', 'bench')
      .append(records as unknown as Record<string, unknown>[], { commitId: `bench-${round}` });
    ours.push(recordCount / ((performance.now() - started) / 1000));
    if (result.rowsAdded !== recordCount)
      throw new Error(`lake.write committed ${result.rowsAdded} rows, expected ${recordCount}`);
    await lake.close();
    await rm(lakeDir, { recursive: true, force: true });

    const file = path.join(context.dir, `baseline-${round}.parquet`);
    await withDuckDB(async (connection) => {
      started = performance.now();
      await baseline(connection, records, file);
      bare.push(recordCount / ((performance.now() - started) / 1000));
    });
    await rm(file, { force: true });
    context.progress(
      `round ${round + 1}: ours ${Math.round(ours.at(-1)!).toLocaleString('en-US')} records/s, baseline ${Math.round(bare.at(-1)!).toLocaleString('en-US')} records/s`,
    );
  }
  const value = median(ours);
  const base = median(bare);
  return {
    value,
    unit: 'records/s',
    baseline: base,
    baseline_name: 'DuckDB Appender + one COPY to Parquet, no commit protocol',
    ratio: value / base,
    goal: 'ratio >= 0.7',
    records: recordCount,
    rounds,
  };
}

export const lakeBenchmarks: Benchmark[] = [
  {
    name: 'lake.write',
    description: `${recordCount.toLocaleString('en-US')} JS records → one committed Parquet (zstd) lake table; median of ${rounds} rounds`,
    run: runLakeWrite,
  },
];
