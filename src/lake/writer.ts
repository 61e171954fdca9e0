import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import nodePath from 'node:path';
import {
  blobValue,
  dateValue,
  DuckDBDataChunk,
  DuckDBDecimalValue,
  jsToDuckDBValue,
  timestampTZValue,
  timestampValue,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { isNoSpaceError, limits, noSpaceError, TributaryError } from '../core/index.js';
import { decodePartitionPath, encodePartitionPath } from './partition.js';
import {
  canonicalType,
  quoteIdentifier,
  quoteLiteral,
  type ColumnSchema,
  type TableSchema,
} from './schema.js';

/** A Parquet file DuckDB wrote into a local scratch directory, before it is published. */
export interface WrittenFile {
  localFile: string;
  /** Canonical encoded Hive partition path ('' when unpartitioned). */
  partition: string;
  /** File name to publish under (inside the partition directory). */
  fileName: string;
  rows: number;
  bytes: number;
}

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const chunkRows = 2048;
const millisPerDay = 86_400_000;

type Convert = (value: unknown, rowIndex: number) => DuckDBValue;

/** Column types whose DuckDB value is the JS value itself, by `typeof`. */
const passthroughTypeOf: Record<string, string | undefined> = {
  VARCHAR: 'string',
  DOUBLE: 'number',
  FLOAT: 'number',
  BOOLEAN: 'boolean',
  BIGINT: 'bigint',
  HUGEINT: 'bigint',
};

/**
 * Turns JS values into DuckDB values for one column of a known type. A value the type cannot hold
 * is a SCHEMA_MISMATCH naming table, column and record (a string in a BIGINT column, say).
 */
function converterFor(table: string, column: ColumnSchema, duckType: DuckDBType): Convert {
  const type = canonicalType(column.type);
  const refuse = (value: unknown, rowIndex: number): never => {
    const shown =
      typeof value === 'string'
        ? JSON.stringify(value.slice(0, 60))
        : value instanceof Date
          ? 'a Date'
          : typeof value;
    throw new TributaryError(
      'SCHEMA_MISMATCH',
      `table ${table}: column ${column.name} has type ${column.type}; record ${rowIndex} holds ${shown}, which it cannot store`,
      {
        details: { table, column: column.name, record: rowIndex, type: column.type },
      },
    );
  };
  const toMillis = (value: unknown, rowIndex: number): number => {
    if (value instanceof Date && Number.isFinite(value.getTime())) return value.getTime();
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    if (typeof value === 'string') {
      const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) || value.length <= 10 ? value : `${value}Z`);
      if (!Number.isNaN(ms)) return ms;
    }
    return refuse(value, rowIndex);
  };
  switch (type) {
    case 'VARCHAR':
      return (v, i) => {
        if (typeof v === 'string') return v;
        if (typeof v === 'object' && v !== null && !(v instanceof Date) && !(v instanceof Uint8Array))
          return JSON.stringify(v);
        return refuse(v, i);
      };
    case 'DOUBLE':
    case 'FLOAT':
      return (v, i) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : refuse(v, i));
    case 'BIGINT':
    case 'HUGEINT':
    case 'UBIGINT':
    case 'UHUGEINT':
      return (v, i) =>
        typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : typeof v === 'bigint' ? v : refuse(v, i);
    case 'INTEGER':
    case 'SMALLINT':
    case 'TINYINT':
    case 'UINTEGER':
    case 'USMALLINT':
    case 'UTINYINT':
      return (v, i) =>
        typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'bigint' ? Number(v) : refuse(v, i);
    case 'BOOLEAN':
      return (v, i) => (typeof v === 'boolean' ? v : refuse(v, i));
    case 'TIMESTAMP':
      return (v, i) => timestampValue(BigInt(Math.round(toMillis(v, i))) * 1000n);
    case 'TIMESTAMP WITH TIME ZONE':
      return (v, i) => timestampTZValue(BigInt(Math.round(toMillis(v, i))) * 1000n);
    case 'DATE': {
      // Rows come grouped by partition, and a date is often one (`event_date=…`): the last text's
      // value is reused instead of parsing the same date again for every row.
      let lastText: string | null = null;
      let lastValue: DuckDBValue = null;
      return (v, i) => {
        if (typeof v === 'string' && v === lastText) return lastValue;
        const value = dateValue(Math.floor(toMillis(v, i) / millisPerDay));
        if (typeof v === 'string') {
          lastText = v;
          lastValue = value;
        }
        return value;
      };
    }
    case 'BLOB':
      return (v, i) =>
        v instanceof Uint8Array ? blobValue(v) : typeof v === 'string' ? blobValue(v) : refuse(v, i);
    default: {
      const decimal = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(type);
      if (decimal) {
        const width = Number(decimal[1]);
        const scale = Number(decimal[2]);
        // Strings (PostgreSQL numeric) are scaled exactly; numbers go through a double.
        return (v, i) => {
          if (typeof v === 'number' && Number.isFinite(v))
            return DuckDBDecimalValue.fromDouble(v, width, scale);
          if (typeof v === 'bigint') return new DuckDBDecimalValue(v * 10n ** BigInt(scale), width, scale);
          const match = typeof v === 'string' ? /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(v.trim()) : null;
          if (!match || (match[2] === '' && (match[3] ?? '') === '')) return refuse(v, i);
          const fraction = (match[3] ?? '').padEnd(scale, '0');
          if (fraction.length > scale && /[^0]/.test(fraction.slice(scale))) return refuse(v, i);
          const digits = BigInt(`${match[2] || '0'}${fraction.slice(0, scale)}`);
          return new DuckDBDecimalValue(match[1] === '-' ? -digits : digits, width, scale);
        };
      }
      return (v, i) => {
        try {
          return jsToDuckDBValue(v as never, duckType);
        } catch {
          return refuse(v, i);
        }
      };
    }
  }
}

/**
 * Rows to write, and columns whose value is the same for every one of them (a partition's
 * columns, bronze metadata): those are filled from `constants` without a per-row copy, and take
 * precedence over a row's own value.
 */
export interface RowGroup {
  rows: readonly Record<string, unknown>[];
  constants?: Readonly<Record<string, unknown>>;
}

/**
 * Fills the Appender chunk by chunk (DuckDB's vector size), column by column, across group
 * boundaries: a chunk holds the tails and heads of several small partitions rather than one
 * short chunk per partition.
 */
function appendGroups(
  appender: DuckDBAppender,
  table: string,
  groups: readonly RowGroup[],
  columns: TableSchema,
  types: DuckDBType[],
): void {
  const converters = columns.map((c, i) => converterFor(table, c, types[i]));
  const names = columns.map((c) => c.name);
  // JS values that DuckDB takes as they are for the column's type skip the converter call.
  const passthrough = columns.map((c) => passthroughTypeOf[canonicalType(c.type)]);
  const toDuck = (c: number, value: unknown, rowIndex: number): DuckDBValue =>
    value === null || value === undefined
      ? null
      : typeof value === passthrough[c]
        ? (value as DuckDBValue)
        : converters[c](value, rowIndex);
  const total = groups.reduce((n, g) => n + g.rows.length, 0);
  let groupIndex = 0;
  let offset = 0;
  for (let done = 0; done < total;) {
    const size = Math.min(chunkRows, total - done);
    const vectors = names.map(() => new Array<DuckDBValue>(size));
    for (let filled = 0; filled < size;) {
      const group = groups[groupIndex];
      const n = Math.min(group.rows.length - offset, size - filled);
      const rows = group.rows;
      const constants = group.constants;
      for (let c = 0; c < names.length; c++) {
        const name = names[c];
        const vector = vectors[c];
        if (constants !== undefined && name in constants) {
          const value = toDuck(c, constants[name], done + filled);
          vector.fill(value, filled, filled + n);
          continue;
        }
        const direct = passthrough[c];
        const convert = converters[c];
        for (let r = 0; r < n; r++) {
          const value = rows[offset + r][name];
          vector[filled + r] =
            value === null || value === undefined
              ? null
              : typeof value === direct
                ? (value as DuckDBValue)
                : convert(value, done + filled + r);
        }
      }
      filled += n;
      offset += n;
      if (offset === group.rows.length) {
        groupIndex++;
        offset = 0;
      }
    }
    const chunk = DuckDBDataChunk.create(types, size);
    chunk.setColumns(vectors);
    appender.appendDataChunk(chunk);
    done += size;
  }
}

/**
 * Writes Parquet (zstd) files with DuckDB: JS rows through the Appender into a temporary table,
 * or any SELECT, then one `COPY … TO` (with `PARTITION_BY` for Hive partitions) that reports each
 * file's row count and size (`RETURN_STATS`).
 */
export class ParquetWriter {
  readonly #instance: DuckDBInstance;

  constructor(instance: DuckDBInstance) {
    this.#instance = instance;
  }

  async #withConnection<T>(action: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const connection = await this.#instance.connect();
    try {
      return await action(connection);
    } finally {
      connection.closeSync();
    }
  }

  /**
   * Writes the rows of `groups` with the given column types into `outDir` (created; must be
   * fresh): one Appender pass and one COPY, so the rows of many partitions become one file per
   * partition in a single DuckDB statement.
   */
  async writeRows(
    table: string,
    groups: readonly RowGroup[],
    columns: TableSchema,
    partitionBy: readonly string[],
    outDir: string,
    stem: string,
  ): Promise<WrittenFile[]> {
    // An all-NULL partition column has the open type "NULL" (table.ts), which the Appender cannot
    // fill; it only names the directory (__HIVE_DEFAULT_PARTITION__), so any type writes it.
    columns = columns.map((c) =>
      canonicalType(c.type) === '"NULL"' ? { name: c.name, type: 'VARCHAR' } : c,
    );
    return this.#withConnection(async (connection) => {
      const temp = `stage_${randomUUID().replace(/-/g, '')}`;
      await connection.run(
        `CREATE TEMP TABLE ${temp} (${columns.map((c) => `${quoteIdentifier(c.name)} ${c.type}`).join(', ')})`,
      );
      try {
        const appender = await connection.createAppender(temp, 'main', 'temp');
        try {
          const types = columns.map((_, i) => appender.columnType(i));
          appendGroups(appender, table, groups, columns, types);
          appender.flushSync();
        } finally {
          appender.closeSync();
        }
        return await this.#copy(connection, `SELECT * FROM temp.main.${temp}`, partitionBy, outDir, stem);
      } finally {
        await connection.run(`DROP TABLE IF EXISTS temp.main.${temp}`);
      }
    });
  }

  /**
   * Runs `sql` (a SELECT) and writes its result. `prepare` runs first on the same connection
   * (it creates the lake views the query reads).
   */
  async writeQuery(
    sql: string,
    partitionBy: readonly string[],
    outDir: string,
    stem: string,
    prepare?: (connection: DuckDBConnection) => Promise<void>,
  ): Promise<{ files: WrittenFile[]; schema: TableSchema }> {
    return this.#withConnection(async (connection) => {
      if (prepare) await prepare(connection);
      const schema = await describeOn(connection, sql);
      for (const column of partitionBy) {
        if (!schema.some((c) => c.name === column)) {
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `partition column ${column} is not among the query's columns (${schema.map((c) => c.name).join(', ')})`,
          );
        }
      }
      const files = await this.#copy(connection, sql, partitionBy, outDir, stem);
      return { files, schema };
    });
  }

  /** Column names and types a query produces, without running it. */
  async describe(
    sql: string,
    prepare?: (connection: DuckDBConnection) => Promise<void>,
  ): Promise<TableSchema> {
    return this.#withConnection(async (connection) => {
      if (prepare) await prepare(connection);
      return describeOn(connection, sql);
    });
  }

  async #copy(
    connection: DuckDBConnection,
    select: string,
    partitionBy: readonly string[],
    outDir: string,
    stem: string,
  ): Promise<WrittenFile[]> {
    await rm(outDir, { recursive: true, force: true });
    await mkdir(outDir, { recursive: true });
    const partitioned = partitionBy.length > 0;
    if (partitioned) {
      // DuckDB keeps 100 partition files open by default and starts a second file for a partition
      // it had to close; a stream sink writes hundreds of partitions in one statement and wants one
      // file each (the temp table holds each partition's rows together).
      await connection.run(`SET partitioned_write_max_open_files = ${limits.lakePartitionFilesOpenMax}`);
    }
    const target = partitioned ? outDir : nodePath.join(outDir, `${stem}-0.parquet`);
    const options = ['FORMAT parquet', 'COMPRESSION zstd', 'RETURN_STATS true'];
    if (partitioned) {
      options.push(
        `PARTITION_BY (${partitionBy.map(quoteIdentifier).join(', ')})`,
        `FILENAME_PATTERN ${quoteLiteral(`${stem}-{i}`)}`,
      );
    }
    let reader;
    try {
      reader = await connection.runAndReadAll(
        `COPY (${select}) TO ${quoteLiteral(target)} (${options.join(', ')})`,
      );
    } catch (error) {
      // Nothing of a failed COPY is kept (on a full disk its partial files hold the space).
      await rm(outDir, { recursive: true, force: true });
      if (isNoSpaceError(error)) throw noSpaceError(error, 'writing Parquet files to the lake');
      throw new TributaryError(
        'IO',
        `DuckDB could not write Parquet to ${outDir}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const files: WrittenFile[] = [];
    // Only the three columns used are read: converting whole rows also turned every file's
    // per-column statistics (a map of structs, 20-odd columns × hundreds of files) into JSON.
    const names = reader.columnNames();
    const [nameColumn, countColumn, bytesColumn] = ['filename', 'count', 'file_size_bytes'].map((c) =>
      names.indexOf(c),
    );
    for (let row = 0; row < reader.currentRowCount; row++) {
      const filename = nameColumn < 0 ? null : reader.value(nameColumn, row);
      const localFile = typeof filename === 'string' ? filename : '';
      const rows = countColumn < 0 ? Number.NaN : Number(reader.value(countColumn, row));
      if (rows === 0 && partitioned) continue;
      const relativeDir = nodePath
        .relative(outDir, nodePath.dirname(localFile))
        .split(nodePath.sep)
        .join('/');
      const partition = partitioned ? encodePartitionPath(decodePartitionPath(relativeDir, partitionBy)) : '';
      files.push({
        localFile,
        partition,
        fileName: nodePath.basename(localFile),
        rows,
        bytes: bytesColumn < 0 ? Number.NaN : Number(reader.value(bytesColumn, row)),
      });
    }
    return files;
  }
}

async function describeOn(connection: DuckDBConnection, sql: string): Promise<TableSchema> {
  let result;
  try {
    result = await connection.run(`SELECT * FROM (${sql}) AS q LIMIT 0`);
  } catch (error) {
    throw new TributaryError('INVALID_ARGUMENT', `query failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const names = result.columnNames();
  const types = result.columnTypes();
  return names.map((name, i) => ({ name, type: canonicalType(types[i].toString()) }));
}
