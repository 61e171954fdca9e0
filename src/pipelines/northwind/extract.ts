import { mkdir, rm, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { TributaryError } from '../../core/index.js';
import {
  northwindSchema,
  type ColumnSpec,
  type NorthwindData,
  type Row,
  type TableSpec,
} from './generate.js';
import { encodeCsv } from './load.js';
import { quoteLiteral } from '../../lake/index.js';

/**
 * Bronze extraction of Northwind tables from PostgreSQL (PGlite or a real server) to Parquet.
 *
 * Rows travel as PostgreSQL's own text forms (COPY … TO csv on PGlite; `::text` columns read in
 * keyset pages through `pg`), land in a temporary CSV file, and DuckDB casts them to the bronze
 * types while writing Parquet (zstd): smallint → SMALLINT, integer → INTEGER, real → FLOAT,
 * varchar/text → VARCHAR, date → DATE, bytea (`\x` hex text) → BLOB. Text forms are exact for
 * every one of these types (float4 prints its shortest round-trip form), so bronze holds the source
 * values unchanged; `_ingestion_timestamp` (TIMESTAMP, UTC, as the lake layer writes it) and `_source` are added.
 */
export interface PostgresTableReader {
  /** `_source` prefix, e.g. `postgres://127.0.0.1:5432/northwind` or `pglite:/data/pglite`. */
  readonly source: string;
  /** Columns and types as the source database declares them (information_schema). */
  describeTable(table: string): Promise<ColumnSpec[]>;
  /** Appends the table's rows as CSV (PostgreSQL's COPY csv conventions) to `file`; returns the row count. */
  copyTableCsv(table: TableSpec, file: string): Promise<number>;
}

const describeSql = `SELECT column_name, data_type FROM information_schema.columns
WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`;

function columnSpecs(table: string, rows: { column_name: string; data_type: string }[]): ColumnSpec[] {
  if (rows.length === 0) {
    throw new TributaryError(
      'NOT_FOUND',
      `source table ${table} does not exist (run \`tributary generate northwind\` or point --source-url at a Northwind database)`,
      {
        details: { table },
      },
    );
  }
  return rows.map((r) => ({ name: r.column_name, pgType: r.data_type }));
}

export function pgliteReader(db: PGlite, source: string): PostgresTableReader {
  return {
    source,
    async describeTable(table) {
      const result = await db.query<{ column_name: string; data_type: string }>(describeSql, [table]);
      return columnSpecs(table, result.rows);
    },
    async copyTableCsv(table, file) {
      const columns = table.columns.map((c) => c.name).join(', ');
      const result = await db.query(
        `COPY (SELECT ${columns} FROM ${table.name} ORDER BY ${table.primaryKey.join(', ')}) TO '/dev/blob' WITH (FORMAT csv)`,
      );
      if (result.blob === undefined)
        throw new TributaryError('EXTERNAL', `PGlite returned no data for COPY of ${table.name}`);
      const bytes = new Uint8Array(await result.blob.arrayBuffer());
      await appendFile(file, bytes);
      return result.affectedRows ?? 0;
    },
  };
}

/** Keyset pagination over the primary key: bounded memory, no server-side cursor needed. */
export function postgresReader(
  client: pg.ClientBase,
  source: string,
  pageRows = 50_000,
): PostgresTableReader {
  return {
    source,
    async describeTable(table) {
      const result = await client.query<{ column_name: string; data_type: string }>(describeSql, [table]);
      return columnSpecs(table, result.rows);
    },
    async copyTableCsv(table, file) {
      const pk = table.primaryKey;
      const columns = table.columns.map((c) => `t.${c.name}::text AS ${c.name}`).join(', ');
      const pkIndex = pk.map((k) => table.columns.findIndex((c) => c.name === k));
      let after: (string | null)[] | null = null;
      let total = 0;
      for (;;) {
        const where: string =
          after === null
            ? ''
            : `WHERE (${pk.map((k) => `t.${k}`).join(', ')}) > (${pk.map((_, i) => `$${i + 1}::${table.columns[pkIndex[i]]?.pgType}`).join(', ')})`;
        const result: pg.QueryArrayResult<(string | null)[]> = await client.query({
          // Qualified names: a bare ORDER BY order_id would sort by the text output column.
          text: `SELECT ${columns} FROM ${table.name} AS t ${where} ORDER BY ${pk.map((k) => `t.${k}`).join(', ')} LIMIT ${pageRows}`,
          values: after ?? [],
          rowMode: 'array',
        });
        if (result.rows.length === 0) break;
        await appendFile(file, encodeCsv(result.rows));
        total += result.rows.length;
        const last = result.rows[result.rows.length - 1];
        after = pkIndex.map((i) => last[i] ?? null);
        if (result.rows.length < pageRows) break;
      }
      return total;
    },
  };
}

/**
 * The generator itself as a source: the rows `tributary generate northwind` would load, in the
 * same text forms PostgreSQL's COPY prints, without a database in between. The benchmark uses it
 * to produce bronze at scale 1000 in seconds (loading PGlite at that scale takes minutes) and
 * measures PostgreSQL extraction separately.
 */
export function generatedReader(
  data: NorthwindData,
  source = `generator:scale=${data.scale}`,
): PostgresTableReader {
  const specs = new Map(northwindSchema(data.scale).map((t) => [t.name, t]));
  return {
    source,
    describeTable(table) {
      const spec = specs.get(table);
      if (spec === undefined)
        return Promise.reject(new TributaryError('NOT_FOUND', `no Northwind table ${table}`));
      return Promise.resolve(spec.columns);
    },
    async copyTableCsv(table, file) {
      if (table.name !== 'orders' && table.name !== 'order_details') {
        const rows = data.tables.get(table.name) ?? [];
        await appendFile(file, encodeCsv(rows));
        return rows.length;
      }
      let total = 0;
      for (const batch of data.orderBatches(50_000)) {
        const rows: Row[] = table.name === 'orders' ? batch.orders : batch.details;
        await appendFile(file, encodeCsv(rows));
        total += rows.length;
      }
      return total;
    },
  };
}

/** Bronze (DuckDB/Parquet) type of a PostgreSQL type, as information_schema or our DDL names it. */
export function bronzeType(pgType: string): string {
  const t = pgType.toLowerCase();
  if (t === 'smallint') return 'SMALLINT';
  if (t === 'integer') return 'INTEGER';
  if (t === 'bigint') return 'BIGINT';
  if (t === 'real') return 'FLOAT';
  if (t === 'double precision') return 'DOUBLE';
  if (t === 'numeric') return 'DECIMAL(38,10)';
  if (t === 'boolean') return 'BOOLEAN';
  if (t === 'date') return 'DATE';
  if (t === 'timestamp without time zone') return 'TIMESTAMP';
  if (t === 'timestamp with time zone') return 'TIMESTAMPTZ';
  if (t === 'bytea') return 'BLOB';
  if (/^(varchar|character varying|character|char|bpchar|text)/.test(t)) return 'VARCHAR';
  throw new TributaryError('SCHEMA_MISMATCH', `no bronze type for PostgreSQL type ${pgType}`, {
    details: { type: pgType },
  });
}

function castFromText(name: string, pgType: string): string {
  const type = bronzeType(pgType);
  if (type === 'BLOB')
    return `CASE WHEN ${name} IS NULL THEN NULL ELSE unhex(substr(${name}, 3)) END AS ${name}`;
  if (type === 'VARCHAR') return name;
  return `CAST(${name} AS ${type}) AS ${name}`;
}

export interface StagedTable {
  table: string;
  rows: number;
  /** The extracted rows as PostgreSQL CSV text (delete it once the bronze write is done). */
  csvFile: string;
  /**
   * A DuckDB SELECT over `csvFile` that yields the bronze rows: source columns cast to their
   * bronze types, then `_ingestion_timestamp` and `_source`.
   */
  selectSql: string;
}

/**
 * Extracts one table to `<outDir>/.<table>.csv` and returns the typed SELECT over it. Column types
 * come from the source's information_schema (so any Northwind port works, whatever its id
 * widths); rows are read in primary-key order.
 */
export async function stageTable(options: {
  reader: PostgresTableReader;
  table: string;
  outDir: string;
  ingestionTimestamp: Date;
}): Promise<StagedTable> {
  const name = options.table;
  const known = northwindSchema(1).find((t) => t.name === name);
  if (known === undefined) throw new TributaryError('NOT_FOUND', `no Northwind table ${name}`);
  const spec: TableSpec = {
    name,
    columns: await options.reader.describeTable(name),
    primaryKey: known.primaryKey,
  };
  await mkdir(options.outDir, { recursive: true });
  const csvFile = path.join(options.outDir, `.${name}.csv`);
  await writeFile(csvFile, '');
  try {
    const rows = await options.reader.copyTableCsv(spec, csvFile);
    const columns = `{${spec.columns.map((c) => `${quoteLiteral(c.name)}: 'VARCHAR'`).join(', ')}}`;
    const selectSql = `SELECT ${spec.columns.map((c) => castFromText(c.name, c.pgType)).join(', ')},
    TIMESTAMP ${quoteLiteral(options.ingestionTimestamp.toISOString().replace('T', ' ').replace('Z', ''))} AS _ingestion_timestamp,
    ${quoteLiteral(`${options.reader.source}/public.${name}`)} AS _source
  FROM read_csv(${quoteLiteral(csvFile)}, header = false, columns = ${columns}, quote = '"', escape = '"', allow_quoted_nulls = false, auto_detect = false)`;
    return { table: name, rows, csvFile, selectSql };
  } catch (error) {
    await rm(csvFile, { force: true });
    throw error;
  }
}
