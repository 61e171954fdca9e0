import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import {
  connectPg,
  copyPostgresToLake,
  createPostgresSource,
  createSpoolSource,
  openPglite,
  pgReachable,
  type PgClient,
} from '../src/connectors/index.js';
import { LocalStorage, openLake } from '../src/lake/index.js';
import type { BenchContext, Benchmark, BenchResult } from './types.js';

const realPgUrl = process.env.TRIBUTARY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The benchmark table: mixed types, like an orders table. */
async function createBenchTable(client: PgClient, table: string, rows: number): Promise<void> {
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.query(`CREATE TABLE ${table} (
    id integer PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), quantity smallint,
    ordered_at timestamptz, shipped boolean, weight double precision)`);
  await client.query(`INSERT INTO ${table}
    SELECT g, 'customer-' || (g % 9973), (g % 100000) / 100.0, (g % 50)::smallint,
           timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g % 3 = 0, g * 0.25
      FROM generate_series(1, ${rows}) g`);
}

async function snapshotRate(
  client: PgClient,
  table: string,
  dir: string,
  name: string,
): Promise<{ rows: number; rowsPerS: number }> {
  const lake = await openLake({ storage: new LocalStorage(path.join(dir, `lake-${name}`)) });
  try {
    const source = createPostgresSource({ table, fetchRows: 20_000 }, { client });
    const started = performance.now();
    const result = await copyPostgresToLake(source, lake.table('bronze', `orders_${name}`));
    const seconds = (performance.now() - started) / 1000;
    if (!result.commit?.applied) throw new Error(`snapshot of ${table} did not commit`);
    return { rows: result.rows, rowsPerS: result.rows / seconds };
  } finally {
    await lake.close();
  }
}

/** Baseline: the same rows fetched with `pg` (cursor-less SELECT, array rows), nothing written. */
async function rawPgRate(url: string, table: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    const result = await client.query({ text: `SELECT * FROM ${table}`, rowMode: 'array' });
    return result.rows.length / ((performance.now() - started) / 1000);
  } finally {
    await client.end();
  }
}

/** Baseline for PGlite: the same rows fetched with PGlite's own query (array rows), nothing written. */
async function rawPgliteRate(
  client: PgClient & {
    db: { query: (sql: string, params?: unknown[], options?: object) => Promise<{ rows: unknown[] }> };
  },
  table: string,
): Promise<number> {
  const started = performance.now();
  const result = await client.db.query(`SELECT * FROM ${table}`, [], { rowMode: 'array' });
  return result.rows.length / ((performance.now() - started) / 1000);
}

async function postgresSnapshot(context: BenchContext): Promise<BenchResult> {
  const rows = Number(process.env.TRIBUTARY_BENCH_PG_ROWS ?? 300_000);
  const extra: Record<string, number | string> = {};
  context.progress(`PGlite: creating ${rows.toLocaleString('en-US')} rows`);
  const lite = await openPglite();
  let liteRate: number;
  let liteBaseline: number;
  try {
    await createBenchTable(lite, 'bench_orders', rows);
    liteBaseline = await rawPgliteRate(lite, 'bench_orders');
    const measured = await snapshotRate(lite, 'bench_orders', context.dir, 'pglite');
    liteRate = measured.rowsPerS;
    extra.pglite_rows_per_s = Math.round(liteRate);
    extra.pglite_baseline_raw_fetch_rows_per_s = Math.round(liteBaseline);
  } finally {
    await lite.close();
  }
  if (!(await pgReachable(realPgUrl))) {
    extra.real_postgres = `skipped: nothing listening at ${realPgUrl}`;
    return {
      value: liteRate,
      unit: 'rows/s',
      baseline: liteBaseline,
      baseline_name: 'raw PGlite fetch of the same rows (no write)',
      ratio: liteRate / liteBaseline,
      goal: '>= 300,000 rows/s',
      source: 'pglite',
      ...extra,
    };
  }
  context.progress(`PostgreSQL at ${realPgUrl}: creating ${rows.toLocaleString('en-US')} rows`);
  const real = await connectPg(realPgUrl);
  const table = `tributary_bench_orders_${process.pid}`;
  try {
    await createBenchTable(real, table, rows);
    const baseline = await rawPgRate(realPgUrl, table);
    const measured = await snapshotRate(real, table, context.dir, 'real');
    return {
      value: measured.rowsPerS,
      unit: 'rows/s',
      baseline,
      baseline_name: 'raw pg fetch of the same rows (no write)',
      ratio: measured.rowsPerS / baseline,
      goal: '>= 300,000 rows/s',
      source: 'postgresql',
      rows,
      ...extra,
    };
  } finally {
    await real.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await real.close();
  }
}

async function spoolNdjson(context: BenchContext): Promise<BenchResult> {
  const files = 10;
  const perFile = Number(process.env.TRIBUTARY_BENCH_SPOOL_RECORDS ?? 1_000_000) / files;
  const spool = path.join(context.dir, 'spool');
  await mkdir(spool, { recursive: true });
  context.progress(`writing ${files} NDJSON files × ${perFile.toLocaleString('en-US')} records`);
  for (let f = 0; f < files; f++) {
    const lines: string[] = [];
    for (let i = 0; i < perFile; i++) {
      const id = f * perFile + i;
      lines.push(
        JSON.stringify({
          id,
          user: `u${id % 5000}`,
          rating: (id % 50) / 10,
          helpful: id % 7 === 0,
          text: `review number ${id} was fine`,
        }),
      );
    }
    await writeFile(path.join(spool, `reviews-${f}.ndjson`), `${lines.join('\n')}\n`);
  }
  const names = (await readdir(spool)).filter((n) => n.endsWith('.ndjson'));
  // Baseline: read and parse the same files, nothing else.
  let parsed = 0;
  const baselineStart = performance.now();
  for (const name of names) {
    const text = await readFile(path.join(spool, name), 'utf8');
    for (const line of text.split('\n')) if (line.length > 0) parsed += JSON.parse(line) ? 1 : 0;
  }
  const baseline = parsed / ((performance.now() - baselineStart) / 1000);

  const lake = await openLake({ storage: new LocalStorage(path.join(context.dir, 'lake')) });
  try {
    const source = createSpoolSource({ dir: spool, table: 'bronze.reviews', stableMs: 0 }, { lake });
    const started = performance.now();
    const report = await source.poll();
    const seconds = (performance.now() - started) / 1000;
    if (report.records !== files * perFile || report.files.some((f) => f.outcome !== 'completed')) {
      throw new Error(`spool delivered ${report.records} records; expected ${files * perFile}`);
    }
    const value = report.records / seconds;
    return {
      value,
      unit: 'records/s',
      baseline,
      baseline_name: 'readFile + JSON.parse of the same files',
      ratio: value / baseline,
      goal: '>= 500,000 records/s',
      records: report.records,
      files,
    };
  } finally {
    await lake.close();
  }
}

export const connectorBenchmarks: Benchmark[] = [
  {
    name: 'source.postgres_snapshot',
    description:
      'PostgreSQL table snapshot (COPY … TO STDOUT as CSV → DuckDB read_csv) → committed bronze table; PGlite always, real PostgreSQL when reachable',
    run: postgresSnapshot,
  },
  {
    name: 'source.spool_ndjson',
    description: 'NDJSON files in a spool directory → committed bronze table (one commit per file)',
    run: spoolNdjson,
  },
];
