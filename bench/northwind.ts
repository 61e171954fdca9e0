import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { PGlite } from '@electric-sql/pglite';
import { LocalStorage, openLake } from '../src/lake/index.js';
import { runBronze } from '../src/pipelines/northwind/batch.js';
import { generatedReader, pgliteReader } from '../src/pipelines/northwind/extract.js';
import { generateNorthwind } from '../src/pipelines/northwind/generate.js';
import { lakeTarget } from '../src/pipelines/northwind/lake-target.js';
import { loadNorthwind, pgliteTarget } from '../src/pipelines/northwind/load.js';
import { ParquetDirectory } from '../src/pipelines/northwind/parquet-dir.js';
import { medallionJobs } from '../src/pipelines/northwind/sql.js';
import type { Benchmark } from './types.js';

/**
 * `northwind.gold`: Northwind at scale 1000 (830,000 orders, ~2.15M order lines; override with
 * NORTHWIND_BENCH_SCALE).
 *
 * Bronze input: the generator's rows go straight through the bronze extraction path (text → DuckDB
 * casts → Parquet → lake commit), because loading PGlite at scale 1000 takes minutes on this
 * machine. PostgreSQL extraction is measured separately: generate NORTHWIND_BENCH_PG_SCALE
 * (default 50) into PGlite, then extract the six bronze tables (rows/s).
 *
 * Silver + gold, each side three times, alternating, the fastest run counts:
 *   ours     the pipeline's SQL through the lake layer (each output staged and committed atomically)
 *   baseline the same SQL run directly in DuckDB over the same committed bronze files
 *            (`COPY (…) TO parquet`, no table layer, no commit protocol), same run, same thread count
 * Ratio = ours / baseline time (lower is better; goal ≤ 1.25).
 */
export const northwindBenchmarks: Benchmark[] = [
  {
    name: 'northwind.gold',
    description: 'Northwind scale 1000: silver + gold through the lake vs the same SQL straight in DuckDB',
    async run(context) {
      const dir = context.dir;
      const progress = (message: string) => context.progress(message);
      const scale = Number(process.env.NORTHWIND_BENCH_SCALE ?? 1000);
      const pgScale = Number(process.env.NORTHWIND_BENCH_PG_SCALE ?? 50);

      // 1. PostgreSQL extraction rate, from embedded PGlite.
      const db = new PGlite();
      let started = performance.now();
      const load = await loadNorthwind(pgliteTarget(db), { scale: pgScale, ordersPerBatch: 50_000 });
      const loadMs = performance.now() - started;
      const loadRows = Object.values(load.rows).reduce((a, b) => a + b, 0);
      progress(
        `PGlite: generated + loaded scale ${pgScale} (${loadRows} rows) in ${(loadMs / 1000).toFixed(1)} s`,
      );
      const lake = await openLake({ storage: new LocalStorage(path.join(dir, 'lake')) });
      const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
      const duck = await instance.connect();
      try {
        const scratch = await openLake({ storage: new LocalStorage(path.join(dir, 'pg-lake')) });
        started = performance.now();
        const pgBronze = await runBronze({
          reader: pgliteReader(db, 'pglite:memory'),
          lake: lakeTarget(scratch),
          stagingDir: path.join(dir, 'pg-staging'),
        });
        const pgBronzeMs = performance.now() - started;
        await scratch.close();
        await db.close();
        progress(
          `PostgreSQL (PGlite) → bronze: ${pgBronze.rows} rows in ${(pgBronzeMs / 1000).toFixed(1)} s`,
        );

        // 2. Bronze at full scale, from the generator.
        started = performance.now();
        const bronze = await runBronze({
          reader: generatedReader(generateNorthwind({ scale })),
          lake: lakeTarget(lake),
          stagingDir: path.join(dir, 'staging'),
        });
        const bronzeMs = performance.now() - started;
        progress(
          `generator → bronze at scale ${scale}: ${bronze.rows} rows in ${(bronzeMs / 1000).toFixed(1)} s`,
        );

        // 3. Silver + gold: through the lake vs directly in DuckDB.
        const jobs = medallionJobs(bronze.ingestionDate);
        const ours = async () => {
          const t = performance.now();
          for (const job of jobs) {
            for (const output of job.outputs)
              await lake.table(output.table).writeQuery(output.sql, { mode: 'overwrite' });
          }
          return performance.now() - t;
        };
        let round = 0;
        const direct = async () => {
          round += 1;
          // Bronze views over exactly the lake's committed bronze files; silver/gold go to plain files.
          await lake.prepareViews(duck);
          const target = new ParquetDirectory(duck, path.join(dir, `direct-${round}`));
          const t = performance.now();
          for (const job of jobs) await target.runJob(job);
          return performance.now() - t;
        };
        const oursMs: number[] = [];
        const directMs: number[] = [];
        for (let i = 0; i < 3; i++) {
          oursMs.push(await ours());
          progress(`silver + gold through the lake: ${(oursMs[oursMs.length - 1] / 1000).toFixed(2)} s`);
          directMs.push(await direct());
          progress(
            `silver + gold directly in DuckDB: ${(directMs[directMs.length - 1] / 1000).toFixed(2)} s`,
          );
        }
        const [sales] = (
          await duck.runAndReadAll('SELECT count(*)::INTEGER AS n FROM silver.sales')
        ).getRowObjectsJS();
        const lines = bronze.tables.find((t) => t.table === 'bronze.order_details')?.rows ?? 0;
        const value = Math.min(...oursMs);
        const baseline = Math.min(...directMs);
        return {
          value: Math.round(value),
          unit: 'ms',
          baseline: Math.round(baseline),
          baseline_name: 'same SQL directly in DuckDB over the same bronze files',
          ratio: value / baseline,
          goal: 'ratio (ours / direct time) <= 1.25',
          scale,
          order_lines: lines,
          silver_rows: Number(sales?.n ?? 0),
          silver_gold_lines_per_s: Math.round(lines / (value / 1000)),
          generator_bronze_rows_per_s: Math.round(bronze.rows / (bronzeMs / 1000)),
          pg_scale: pgScale,
          pg_load_rows_per_s: Math.round(loadRows / (loadMs / 1000)),
          pg_bronze_rows: pgBronze.rows,
          pg_bronze_rows_per_s: Math.round(pgBronze.rows / (pgBronzeMs / 1000)),
        };
      } finally {
        duck.closeSync();
        instance.closeSync();
        await lake.close();
        if (!db.closed) await db.close();
      }
    },
  },
];
