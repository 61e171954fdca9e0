import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TributaryError } from '../core/index.js';
import { quoteIdentifier, quoteLiteral } from '../lake/index.js';
import { toJsonValue } from '../sql/index.js';
import type {
  LakeLayer,
  RowFilter,
  TableInfo,
  TablePage,
  TablePartitionInfo,
  TableProvider,
  TableQuery,
  TableRef,
} from './types.js';

const layers: LakeLayer[] = ['bronze', 'silver', 'gold'];
const tableNamePattern = /^[a-z][a-z0-9_]{0,62}$/;
const typePattern = /^[A-Z0-9_(), ]{1,64}$/;

const sqlOperators: Record<RowFilter['op'], string> = {
  eq: '=',
  ne: '<>',
  lt: '<',
  lte: '<=',
  gt: '>',
  gte: '>=',
  like: 'LIKE',
  in: 'IN',
};

/**
 * Builds the read SQL for a table query. Identifiers are quoted and were checked against the
 * table's real columns by the caller; every value is a bound parameter cast to the column's type.
 */
export function buildReadSql(
  source: string,
  table: TableInfo,
  query: TableQuery,
): { sql: string; countSql: string; values: (string | number)[] } {
  const values: (string | number)[] = [];
  const typeOf = (column: string): string => {
    const type = table.columns.find((c) => c.name === column)?.type;
    if (type === undefined || !typePattern.test(type))
      throw new TributaryError('INVALID_ARGUMENT', `column ${column} cannot be filtered`);
    return type;
  };
  const bind = (value: string, type: string) => {
    values.push(value);
    return `CAST($${values.length} AS ${type})`;
  };
  const where = query.filters.map((filter) => {
    const type = typeOf(filter.column);
    const column = quoteIdentifier(filter.column);
    if (filter.op === 'in') {
      const list = (Array.isArray(filter.value) ? filter.value : [filter.value]).map((v) => bind(v, type));
      return `${column} IN (${list.join(', ')})`;
    }
    const value = Array.isArray(filter.value) ? (filter.value[0] ?? '') : filter.value;
    return `${column} ${sqlOperators[filter.op]} ${bind(value, type)}`;
  });
  const whereSql = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '';
  const columns = query.columns.length > 0 ? query.columns.map(quoteIdentifier).join(', ') : '*';
  const order =
    query.sort.length > 0
      ? ` ORDER BY ${query.sort.map((s) => `${quoteIdentifier(s.column)} ${s.direction === 'desc' ? 'DESC' : 'ASC'} NULLS LAST`).join(', ')}`
      : '';
  const countSql = `SELECT count(*) AS n FROM ${source}${whereSql}`;
  const filterValues = [...values];
  values.push(query.limit, query.offset);
  const sql = `SELECT ${columns} FROM ${source}${whereSql}${order} LIMIT $${filterValues.length + 1} OFFSET $${filterValues.length + 2}`;
  return { sql, countSql, values };
}

export interface ParquetTableProviderOptions {
  /** Directory holding `<layer>/<table>/[k=v/...]*.parquet`. */
  root: string;
  /** Tenant column per `layer.table`; by default a column named `company` or `tenant`. */
  tenantColumns?: Record<string, string>;
}

/**
 * A TableProvider reading Parquet files straight from a directory tree with DuckDB. The DuckDB
 * instance may only touch files under `root` (`allowed_directories`, external access off), so even
 * a mistake in SQL construction could not read anything else.
 */
export class ParquetTableProvider implements TableProvider {
  readonly root: string;
  readonly #tenantColumns: Record<string, string>;
  readonly #listeners = new Set<(table: TableRef) => void>();
  #instance: Promise<DuckDBInstance> | undefined;

  constructor(options: ParquetTableProviderOptions) {
    this.root = path.resolve(options.root);
    this.#tenantColumns = options.tenantColumns ?? {};
  }

  async #connect(): Promise<DuckDBConnection> {
    this.#instance ??= (async () => {
      const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
      const connection = await instance.connect();
      await connection.run(`SET allowed_directories = [${quoteLiteral(this.root + path.sep)}]`);
      await connection.run('SET enable_external_access = false');
      await connection.run('SET lock_configuration = true');
      connection.closeSync();
      return instance;
    })();
    return (await this.#instance).connect();
  }

  async #run<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const connection = await this.#connect();
    try {
      return await work(connection);
    } finally {
      connection.closeSync();
    }
  }

  #source(layer: LakeLayer, name: string): string {
    const glob = path.join(this.root, layer, name, '**', '*.parquet');
    return `read_parquet(${quoteLiteral(glob)}, hive_partitioning = true, union_by_name = true)`;
  }

  async #files(directory: string): Promise<{ relative: string; sizeBytes: number; modifiedMs: number }[]> {
    const result: { relative: string; sizeBytes: number; modifiedMs: number }[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full, prefix ? `${prefix}/${entry.name}` : entry.name);
        else if (entry.name.endsWith('.parquet')) {
          const info = await stat(full);
          result.push({
            relative: prefix ? `${prefix}/${entry.name}` : entry.name,
            sizeBytes: info.size,
            modifiedMs: info.mtimeMs,
          });
        }
      }
    };
    await walk(directory, '');
    return result;
  }

  async listTables(): Promise<TableInfo[]> {
    const tables: TableInfo[] = [];
    for (const layer of layers) {
      const entries = await readdir(path.join(this.root, layer), { withFileTypes: true }).catch(() => []);
      for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (!entry.isDirectory() || !tableNamePattern.test(entry.name)) continue;
        const info = await this.describeTable(layer, entry.name);
        if (info) tables.push(info);
      }
    }
    return tables;
  }

  async describeTable(layer: LakeLayer, name: string): Promise<TableInfo | null> {
    if (!layers.includes(layer) || !tableNamePattern.test(name)) return null;
    const files = await this.#files(path.join(this.root, layer, name));
    if (files.length === 0) return null;
    const partitions = new Map<string, TablePartitionInfo>();
    for (const file of files) {
      const partitionPath = file.relative.includes('/')
        ? file.relative.slice(0, file.relative.lastIndexOf('/'))
        : '';
      const partition = partitions.get(partitionPath) ?? { path: partitionPath, files: 0, sizeBytes: 0 };
      partition.files += 1;
      partition.sizeBytes += file.sizeBytes;
      partitions.set(partitionPath, partition);
    }
    const described = await this.#run((c) =>
      c.runAndReadAll(`DESCRIBE SELECT * FROM ${this.#source(layer, name)}`),
    );
    const columns = described
      .getRowObjectsJS()
      .map((row) => ({ name: String(row.column_name as string), type: String(row.column_type as string) }));
    const tenantColumn =
      this.#tenantColumns[`${layer}.${name}`] ??
      columns.find((c) => c.name === 'company' || c.name === 'tenant')?.name;
    return {
      layer,
      name,
      columns,
      partitions: [...partitions.values()].sort((a, b) => a.path.localeCompare(b.path)),
      files: files.length,
      sizeBytes: files.reduce((sum, f) => sum + f.sizeBytes, 0),
      updatedAtMs: Math.max(...files.map((f) => f.modifiedMs)),
      ...(tenantColumn ? { tenantColumn } : {}),
    };
  }

  async readRows(query: TableQuery): Promise<TablePage> {
    const table = await this.describeTable(query.layer, query.name);
    if (!table) throw new TributaryError('NOT_FOUND', `table ${query.layer}.${query.name} does not exist`);
    const { sql, countSql, values } = buildReadSql(this.#source(query.layer, query.name), table, query);
    return this.#run(async (connection) => {
      const reader = await connection.runAndReadAll(sql, values);
      const counted = await connection.runAndReadAll(countSql, values.slice(0, -2));
      const columnNames = reader.columnNames();
      const columns = columnNames.map(
        (name) => table.columns.find((c) => c.name === name) ?? { name, type: 'UNKNOWN' },
      );
      // The SQL layer's conversion, with the column types: the table route and /api/query agree.
      const types = reader.columnTypes();
      const rows = reader.getRowsJS().map((row) => {
        const object: Record<string, unknown> = {};
        for (let i = 0; i < columnNames.length; i++) object[columnNames[i]] = toJsonValue(row[i], types[i]);
        return object;
      });
      return { columns, rows, total: Number(counted.getRowObjectsJS()[0]?.n ?? 0) };
    });
  }

  onCommit(listener: (table: TableRef) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Writers call this after committing files of a table (cache invalidation, live updates). */
  notifyCommit(table: TableRef): void {
    for (const listener of [...this.#listeners]) listener(table);
  }

  async check(): Promise<void> {
    await this.#run((c) => c.run('SELECT 1'));
  }

  close(): void {
    void this.#instance?.then((instance) => instance.closeSync());
    this.#instance = undefined;
  }
}
