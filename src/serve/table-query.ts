import { TributaryError, childLogger, isTributaryError } from '../core/index.js';
import {
  filterOperators,
  type ColumnInfo,
  type FilterOperator,
  type RowFilter,
  type RowSort,
  type TableInfo,
} from './types.js';

/** Bounds on what one table read may ask for. */
export const tableQueryLimits = {
  limitDefault: 100,
  limitMax: 1000,
  offsetMax: 10_000_000,
  filtersMax: 16,
  sortMax: 4,
  inValuesMax: 100,
  valueCharsMax: 1000,
} as const;

/** Query parameters of the table route that are not column filters. */
export const reservedTableParams = new Set(['columns', 'sort', 'limit', 'offset', 'token']);

export interface ParsedTableQuery {
  columns: string[];
  filters: RowFilter[];
  sort: RowSort[];
  limit: number;
  offset: number;
}

function columnOrThrow(table: TableInfo, name: string, where: string): ColumnInfo {
  const column = table.columns.find((c) => c.name === name);
  if (!column) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${where}: ${JSON.stringify(name.slice(0, 100))} is not a column of ${table.layer}.${table.name}; columns: ${table.columns.map((c) => c.name).join(', ')}`,
    );
  }
  return column;
}

function integerParam(raw: string | undefined, name: string, fallback: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) > max) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${name} must be an integer between 0 and ${max}, got ${JSON.stringify(raw.slice(0, 40))}`,
    );
  }
  return Number(raw);
}

/** Inclusive ranges of DuckDB's integer types, so an out-of-range value is refused here. */
const integerRanges: Record<string, [bigint, bigint]> = {
  TINYINT: [-(2n ** 7n), 2n ** 7n - 1n],
  SMALLINT: [-(2n ** 15n), 2n ** 15n - 1n],
  INTEGER: [-(2n ** 31n), 2n ** 31n - 1n],
  BIGINT: [-(2n ** 63n), 2n ** 63n - 1n],
  UTINYINT: [0n, 2n ** 8n - 1n],
  USMALLINT: [0n, 2n ** 16n - 1n],
  UINTEGER: [0n, 2n ** 32n - 1n],
  UBIGINT: [0n, 2n ** 64n - 1n],
};

const integerTypes = /^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT|INT\d*)$/;
const floatTypes = /^(FLOAT|DOUBLE|REAL|DECIMAL(\(\d+,\s*\d+\))?)$/;
const timeTypes = /^(DATE|TIMESTAMP.*|TIME)$/;

/**
 * Checks that a filter value can be cast to the column's type, so a bad value is a 400 naming the
 * column rather than a conversion error deep in the engine.
 */
export function checkFilterValue(column: ColumnInfo, value: string, op: FilterOperator): void {
  if (value.length > tableQueryLimits.valueCharsMax) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `filter on ${column.name}: value longer than ${tableQueryLimits.valueCharsMax} characters`,
    );
  }
  if (value.includes('\0'))
    throw new TributaryError('INVALID_ARGUMENT', `filter on ${column.name}: value contains a NUL byte`);
  const type = column.type.toUpperCase();
  if (op === 'like' && type !== 'VARCHAR') {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `filter on ${column.name}: like only applies to text columns (${column.name} is ${column.type})`,
    );
  }
  if (integerTypes.test(type)) {
    if (!/^-?\d{1,18}$/.test(value))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `filter on ${column.name} (${column.type}): ${JSON.stringify(value.slice(0, 40))} is not an integer`,
      );
    const range = integerRanges[type];
    if (range !== undefined && (BigInt(value) < range[0] || BigInt(value) > range[1]))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `filter on ${column.name} (${column.type}): ${value} is outside ${range[0]}..${range[1]}`,
      );
  } else if (floatTypes.test(type)) {
    if (
      !/^-?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})([eE][-+]?\d{1,3})?$/.test(value) ||
      !Number.isFinite(Number(value))
    ) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `filter on ${column.name} (${column.type}): ${JSON.stringify(value.slice(0, 40))} is not a number`,
      );
    }
  } else if (type === 'BOOLEAN') {
    if (!['true', 'false'].includes(value))
      throw new TributaryError('INVALID_ARGUMENT', `filter on ${column.name} (BOOLEAN): use true or false`);
  } else if (timeTypes.test(type)) {
    if (!/^[0-9T:.+\- Z]{4,40}$/.test(value) || (type !== 'TIME' && Number.isNaN(Date.parse(value)))) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `filter on ${column.name} (${column.type}): ${JSON.stringify(value.slice(0, 40))} is not a date/time`,
      );
    }
  } else if (type !== 'VARCHAR') {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `filter on ${column.name}: columns of type ${column.type} cannot be filtered`,
    );
  }
}

function parseFilterValue(column: ColumnInfo, raw: string): RowFilter {
  let op: FilterOperator = 'eq';
  let value = raw;
  const colon = raw.indexOf(':');
  if (colon > 0 && (filterOperators as readonly string[]).includes(raw.slice(0, colon))) {
    op = raw.slice(0, colon) as FilterOperator;
    value = raw.slice(colon + 1);
  }
  if (op === 'in') {
    const values = value.split(',');
    if (values.length > tableQueryLimits.inValuesMax)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `filter on ${column.name}: at most ${tableQueryLimits.inValuesMax} values for in`,
      );
    for (const v of values) checkFilterValue(column, v, op);
    return { column: column.name, op, value: values };
  }
  checkFilterValue(column, value, op);
  return { column: column.name, op, value };
}

/**
 * Parses a table route's query string against the table's real columns (the allow-list):
 * `filter[col]=v`, `filter[col]=gt:5`, or the short form `col=eq:v`; `sort=col,-other`;
 * `columns=a,b`; `limit`; `offset`. Operators: eq ne lt lte gt gte like in (comma-separated).
 */
export function parseTableQuery(table: TableInfo, query: Record<string, string[]>): ParsedTableQuery {
  const first = (name: string) => query[name]?.[0];
  const filters: RowFilter[] = [];
  for (const [name, values] of Object.entries(query)) {
    let columnName: string | undefined;
    const deep = /^filter\[(.*)\]$/.exec(name);
    if (deep) columnName = deep[1]!;
    else if (!reservedTableParams.has(name)) columnName = name;
    if (columnName === undefined) continue;
    const column = columnOrThrow(table, columnName, 'filter');
    for (const raw of values) filters.push(parseFilterValue(column, raw));
  }
  if (filters.length > tableQueryLimits.filtersMax)
    throw new TributaryError('INVALID_ARGUMENT', `at most ${tableQueryLimits.filtersMax} filters`);

  const sort: RowSort[] = [];
  const sortText = first('sort');
  if (sortText) {
    for (const part of sortText.split(',')) {
      const descending = part.startsWith('-');
      const name = descending ? part.slice(1) : part;
      columnOrThrow(table, name, 'sort');
      sort.push({ column: name, direction: descending ? 'desc' : 'asc' });
    }
    if (sort.length > tableQueryLimits.sortMax)
      throw new TributaryError('INVALID_ARGUMENT', `sort by at most ${tableQueryLimits.sortMax} columns`);
  }

  const columns: string[] = [];
  const columnsText = first('columns');
  if (columnsText) {
    for (const name of columnsText.split(',')) columns.push(columnOrThrow(table, name, 'columns').name);
  }

  return {
    columns: [...new Set(columns)],
    filters,
    sort,
    limit: Math.max(
      1,
      integerParam(first('limit'), 'limit', tableQueryLimits.limitDefault, tableQueryLimits.limitMax),
    ),
    offset: integerParam(first('offset'), 'offset', 0, tableQueryLimits.offsetMax),
  };
}

const log = childLogger('serve.tables');

/**
 * A table read the engine refused although every parameter passed its check: the answer names
 * the table and the filter parameters, never the engine's message or the generated SQL (those go
 * to the server log). Other errors pass through unchanged.
 */
export function tableReadError(error: unknown, table: string, filters: readonly RowFilter[]): unknown {
  if (!isTributaryError(error) || error.code !== 'INVALID_ARGUMENT' || error.details.sql === undefined)
    return error;
  log.warn({ err: error, table }, 'table read refused by the SQL engine');
  const named = filters.map((f) => `${f.column} (${f.op})`).join(', ');
  return new TributaryError(
    'INVALID_ARGUMENT',
    filters.length === 0
      ? `table ${table} could not be read with these parameters (columns, sort, limit, offset)`
      : `table ${table}: the filters on ${named} could not be applied; a value does not fit its column's type`,
  );
}
