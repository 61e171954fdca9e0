import { DuckDBInstance } from '@duckdb/node-api';
import type { Lake } from '../../src/lake/index.js';

/** Every row of a lake table's current snapshot (JSON-friendly values), ordered by `orderBy`. */
export async function readTable(
  lake: Lake,
  table: string,
  orderBy?: string,
): Promise<Record<string, unknown>[]> {
  const snapshot = await lake.table(table).snapshot();
  if (!snapshot || snapshot.files.length === 0) return [];
  const files = await lake.localFiles(table, snapshot.files);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const list = files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ');
    const reader = await connection.runAndReadAll(
      `SELECT * FROM read_parquet([${list}], union_by_name = true)${orderBy ? ` ORDER BY ${orderBy}` : ''}`,
    );
    return reader.getRowObjectsJson();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Column name → DuckDB type of a lake table's schema. */
export async function tableTypes(lake: Lake, table: string): Promise<Record<string, string>> {
  const snapshot = await lake.table(table).snapshot();
  return Object.fromEntries((snapshot?.schema ?? []).map((c) => [c.name, c.type]));
}
