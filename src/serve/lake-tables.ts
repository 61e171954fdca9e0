import { describeSnapshot, type Lake } from '../lake/index.js';
import type { SqlEngine } from '../sql/index.js';
import { TributaryError } from '../core/index.js';
import { quoteIdentifier } from '../lake/index.js';
import type {
  LakeLayer,
  RowFilter,
  TableInfo,
  TablePage,
  TableProvider,
  TableQuery,
  TableRef,
} from './types.js';

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

export interface LakeTableProviderOptions {
  lake: Lake;
  sql: SqlEngine;
  /** Tenant column per `layer.table`; by default a column named `company` or `tenant`. */
  tenantColumns?: Record<string, string>;
}

function toTableInfo(
  info: ReturnType<typeof describeSnapshot>,
  tenantColumns: Record<string, string>,
): TableInfo {
  const columns = info.schema.map((c) => ({ name: c.name, type: c.type }));
  const tenantColumn =
    tenantColumns[info.table] ?? columns.find((c) => c.name === 'company' || c.name === 'tenant')?.name;
  return {
    layer: info.layer,
    name: info.name,
    columns,
    partitions: info.partitions.map((p) => ({
      path: p.path,
      files: p.files,
      sizeBytes: p.bytes,
      rows: p.rows,
    })),
    files: info.files,
    sizeBytes: info.bytes,
    rows: info.rows,
    updatedAtMs: info.committedAtMs,
    ...(tenantColumn ? { tenantColumn } : {}),
  };
}

/** Table listings straight from the lake's manifests (no SQL engine needed: `tributary status`). */
export async function lakeTableInfos(
  lake: Lake,
  tenantColumns: Record<string, string> = {},
): Promise<TableInfo[]> {
  return (await lake.listTables()).map((info) => toTableInfo(info, tenantColumns));
}

/**
 * The production TableProvider: table listings from the lake's manifests (no data read) and rows
 * through the read-only SQL engine, with identifiers checked against the manifest schema and every
 * value a bound parameter. Commits made through `lake` invalidate the API's cached reads.
 *
 * @example
 * const lake = await openLakeFromConfig(config);
 * const tables = createLakeTableProvider({ lake, sql: await openSqlEngine(lake) });
 */
export function createLakeTableProvider(options: LakeTableProviderOptions): TableProvider {
  const { lake, sql } = options;
  const tenantColumns = options.tenantColumns ?? {};
  const describe = async (layer: LakeLayer, name: string): Promise<TableInfo | null> => {
    let snapshot;
    try {
      snapshot = await lake.table(layer, name).snapshot();
    } catch (error) {
      if (
        error instanceof TributaryError &&
        (error.code === 'INVALID_ARGUMENT' || error.code === 'NOT_FOUND')
      )
        return null;
      throw error;
    }
    return snapshot ? toTableInfo(describeSnapshot(snapshot), tenantColumns) : null;
  };
  return {
    async listTables() {
      return (await lake.listTables()).map((info) => toTableInfo(info, tenantColumns));
    },
    describeTable: describe,
    async readRows(query: TableQuery): Promise<TablePage> {
      const table = await describe(query.layer, query.name);
      if (!table) throw new TributaryError('NOT_FOUND', `table ${query.layer}.${query.name} does not exist`);
      const source = `${quoteIdentifier(query.layer)}.${quoteIdentifier(query.name)}`;
      const { sql: text, countSql, values } = buildReadSql(source, table, query);
      const options = query.signal ? { signal: query.signal } : {};
      const result = await sql.queryWithColumns(text, values, options);
      const counted = await sql.query(countSql, values.slice(0, -2), options);
      return {
        columns: result.columns.map((c) => ({ name: c.name, type: c.type })),
        rows: result.rows,
        total: Number(counted[0]?.n ?? 0),
      };
    },
    onCommit(listener: (table: TableRef) => void) {
      return lake.onCommit((event) => {
        const dot = event.table.indexOf('.');
        listener({ layer: event.table.slice(0, dot) as LakeLayer, name: event.table.slice(dot + 1) });
      });
    },
    async check() {
      await sql.query('SELECT 1 AS ok');
    },
  };
}
