import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { TributaryError } from '../../core/index.js';
import { quoteLiteral } from '../../lake/index.js';
import { checkIngestionDate, ingestionDateColumn, type SqlBatchJobSpec } from './sql.js';
import type { NorthwindLake } from './batch.js';

/**
 * Runs the medallion SQL straight in DuckDB over a directory of Parquet files — no table layer,
 * no manifest, no commit protocol. It is the benchmark's same-run baseline ("the same SQL run
 * directly in DuckDB over the same bronze files") and what the tests use to check the SQL
 * against PostgreSQL.
 *
 * Layout (Hive-style, readable by any Parquet engine), every layer partitioned by run date:
 *   <root>/<bronze|silver|gold>/<table>/ingestion_date=YYYY-MM-DD/part-0.parquet
 * A file is written under a temporary name and renamed over the old one, so a rerun replaces that
 * date's partition instead of adding rows; other dates stay.
 */
export class ParquetDirectory implements NorthwindLake {
  readonly root: string;
  readonly #duck: DuckDBConnection;

  constructor(duck: DuckDBConnection, root: string) {
    this.#duck = duck;
    this.root = root;
  }

  static checkTable(table: string): [string, string] {
    const match = /^(bronze|silver|gold)\.([a-z_][a-z0-9_]*)$/.exec(table);
    if (!match)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `lake table must be <bronze|silver|gold>.<name>, got ${JSON.stringify(table)}`,
      );
    return [match[1], match[2]];
  }

  tableDir(table: string): string {
    const [layer, name] = ParquetDirectory.checkTable(table);
    return path.join(this.root, layer, name);
  }

  /** Replaces one bronze partition with the rows of `selectSql`. */
  async replaceBronzePartition(table: string, ingestionDate: string, selectSql: string): Promise<void> {
    await this.replacePartition(table, ingestionDate, selectSql);
    await this.createViews();
  }

  /** Writes `sql`'s result as partition `ingestion_date=<date>` of `table`. */
  async replacePartition(table: string, ingestionDate: string, sql: string): Promise<void> {
    const date = checkIngestionDate(ingestionDate);
    await this.#write(path.join(this.tableDir(table), `${ingestionDateColumn}=${date}`), sql);
  }

  async #write(dir: string, sql: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const temporary = path.join(dir, `.part-0.${process.pid}.tmp`);
    await this.#duck.run(`COPY (${sql}) TO ${quoteLiteral(temporary)} (FORMAT parquet, COMPRESSION zstd)`);
    await rename(temporary, path.join(dir, 'part-0.parquet'));
  }

  /** (Re)creates the `<layer>.<name>` views over every table present in the directory. */
  async createViews(): Promise<string[]> {
    const created: string[] = [];
    for (const layer of ['bronze', 'silver', 'gold']) {
      const layerDir = path.join(this.root, layer);
      await this.#duck.run(`CREATE SCHEMA IF NOT EXISTS ${layer}`);
      if (!existsSync(layerDir)) continue;
      for (const entry of await readdir(layerDir, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const glob = path.join(layerDir, entry.name, '*', '*.parquet');
        await this.#duck.run(
          `CREATE OR REPLACE VIEW ${layer}.${entry.name} AS SELECT * FROM read_parquet(${quoteLiteral(glob)}, hive_partitioning = true, hive_types = {${ingestionDateColumn}: DATE})`,
        );
        created.push(`${layer}.${entry.name}`);
      }
    }
    return created;
  }

  /** Runs one SQL batch job: each output in order (its run date's partition), refreshing views so later outputs see earlier ones. */
  async runJob(job: SqlBatchJobSpec): Promise<void> {
    for (const output of job.outputs) {
      await this.replacePartition(output.table, job.ingestionDate, output.sql);
      await this.createViews();
    }
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}
