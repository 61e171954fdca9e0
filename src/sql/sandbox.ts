import type { DuckDBConnection } from '@duckdb/node-api';
import { TributaryError } from '../core/index.js';

/**
 * Table functions a query may call. Everything else is refused, in particular every function that
 * reads files or URLs (read_csv, read_parquet, read_json, read_text, read_blob, glob, parquet_*,
 * sniff_csv…) and those that run SQL from a string (query, query_table): lake data is read only
 * through the `bronze.*`, `silver.*` and `gold.*` views.
 */
export const allowedTableFunctions = new Set([
  'range',
  'generate_series',
  'unnest',
  'json_each',
  'json_tree',
  'duckdb_tables',
  'duckdb_views',
  'duckdb_columns',
  'duckdb_schemas',
  'duckdb_types',
  'duckdb_functions',
  'duckdb_keywords',
  'test_all_types',
]);

/** First keyword of a statement, for messages ("COPY statements are refused"). */
function leadingKeyword(sql: string): string {
  const stripped = sql.replace(/^(\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/)+/, '');
  return (/^[A-Za-z_]+/.exec(stripped)?.[0] ?? 'this').toUpperCase();
}

function refuse(message: string, sql: string): never {
  throw new TributaryError(
    'SQL_REFUSED',
    `${message}. The query path is read-only: one SELECT (WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) over the lake views bronze.*, silver.*, gold.*`,
    {
      details: { sql: sql.length > 500 ? `${sql.slice(0, 500)}…` : sql },
    },
  );
}

/** Walks DuckDB's parse tree (from `json_serialize_sql`), refusing file access and unknown table functions. */
function checkTree(node: unknown, sql: string): void {
  if (Array.isArray(node)) {
    for (const child of node) checkTree(child, sql);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  if (record.type === 'TABLE_FUNCTION') {
    const fn = record.function as Record<string, unknown> | undefined;
    const name = (typeof fn?.function_name === 'string' ? fn.function_name : '').toLowerCase();
    if (!allowedTableFunctions.has(name)) {
      refuse(
        `table function ${name}() is refused (it can read files or run SQL); query the lake views instead`,
        sql,
      );
    }
  }
  if (record.type === 'BASE_TABLE') {
    const table = typeof record.table_name === 'string' ? record.table_name : '';
    if (/[/\\:.*?]/.test(table) || table.includes('~'))
      refuse(`reading ${JSON.stringify(table)} directly is refused; query the lake views instead`, sql);
  }
  for (const value of Object.values(record)) if (typeof value === 'object') checkTree(value, sql);
}

/**
 * Parse-level read-only check: exactly one statement; it must serialize as a SELECT (DuckDB's
 * `json_serialize_sql` only accepts SELECT statements, so INSERT, COPY, ATTACH, INSTALL, LOAD, SET,
 * PRAGMA, CREATE… all fail here); its tree may not read files or call unlisted table functions.
 * `EXPLAIN [ANALYZE]` is checked on the statement it explains.
 *
 * This is the first of two fences; the engine also runs DuckDB with `enable_external_access =
 * false` (files only inside the lake directories) and `lock_configuration = true`.
 */
export async function checkReadOnlySql(connection: DuckDBConnection, sql: string): Promise<void> {
  let count: number;
  try {
    count = (await connection.extractStatements(sql)).count;
  } catch (error) {
    throw new TributaryError('INVALID_ARGUMENT', `SQL does not parse: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (count !== 1) {
    // DuckDB expands a PIVOT without an IN list into several statements (it first collects the values).
    const hint = /\bPIVOT\b/i.test(sql)
      ? ` (a PIVOT needs an explicit list: PIVOT t ON col IN ('a', 'b') USING …)`
      : '';
    refuse(`expected exactly one statement, got ${count}${hint}`, sql);
  }
  const explain = /^\s*EXPLAIN(\s+ANALYZE)?\s+/i.exec(sql);
  const inner = explain ? sql.slice(explain[0].length) : sql;
  const reader = await connection.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS tree', [inner]);
  const text = reader.getRows()[0]?.[0];
  const tree = JSON.parse(typeof text === 'string' ? text : '{"error":true}') as {
    error: boolean;
    error_message?: string;
    statements?: unknown[];
  };
  if (tree.error) {
    const keyword = leadingKeyword(inner);
    refuse(
      `${keyword} statements are refused${tree.error_message && !/Only SELECT/i.test(tree.error_message) ? ` (${tree.error_message})` : ''}`,
      sql,
    );
  }
  checkTree(tree.statements, sql);
}
