import { TributaryError } from '../core/index.js';

/**
 * How JS rows become a DuckDB table for `SqlEngine.queryRows`: newline-delimited JSON (one row per
 * line; JSON.stringify escapes newlines inside strings) split by DuckDB and handed row by row to
 * `from_json` with an explicit structure (column → DuckDB type), so no file is written and nothing
 * outside the sandbox is needed. Row by row because one `from_json` of a whole array is ~8× slower. Types come from the values: booleans BOOLEAN, integers BIGINT
 * (HUGEINT when a bigint is present), other numbers DOUBLE, Dates TIMESTAMP (UTC), strings VARCHAR,
 * arrays and objects JSON; a column whose values mix kinds is VARCHAR (DuckDB's JSON text of each).
 * Columns no row has (`extraColumns`) are VARCHAR and NULL. `nullTypes` gives the type of a column
 * that is NULL in every row (no value to infer from; e.g. the target table's type), so an
 * expression over it still binds.
 */
export interface RowsAsJson {
  /** One JSON object per line. */
  ndjson: string;
  structure: string;
  columns: { name: string; type: string }[];
}

type Kind = 'boolean' | 'integer' | 'bigint' | 'number' | 'date' | 'string' | 'json';

function kindOf(value: unknown): Kind {
  switch (typeof value) {
    case 'boolean':
      return 'boolean';
    case 'bigint':
      return 'bigint';
    case 'number':
      return Number.isInteger(value) ? 'integer' : 'number';
    case 'string':
      return 'string';
    default:
      return value instanceof Date ? 'date' : 'json';
  }
}

function typeOf(kinds: Set<Kind>): string {
  if (kinds.size === 0) return 'VARCHAR';
  if (kinds.size === 1) {
    const [kind] = kinds;
    return (
      {
        boolean: 'BOOLEAN',
        integer: 'BIGINT',
        bigint: 'HUGEINT',
        number: 'DOUBLE',
        date: 'TIMESTAMP',
        string: 'VARCHAR',
        json: 'JSON',
      } as const
    )[kind];
  }
  if ([...kinds].every((k) => k === 'integer' || k === 'bigint')) return 'HUGEINT';
  if ([...kinds].every((k) => k === 'integer' || k === 'number')) return 'DOUBLE';
  return 'VARCHAR';
}

export function rowsAsJson(
  rows: readonly Record<string, unknown>[],
  extraColumns: readonly string[] = [],
  nullTypes: Readonly<Record<string, string>> = {},
): RowsAsJson {
  const kinds = new Map<string, Set<Kind>>();
  for (const row of rows) {
    for (const key in row) {
      let set = kinds.get(key);
      if (set === undefined) kinds.set(key, (set = new Set()));
      const value = row[key];
      if (value !== null && value !== undefined) set.add(kindOf(value));
    }
  }
  for (const name of extraColumns) if (!kinds.has(name)) kinds.set(name, new Set());
  if (kinds.size === 0) throw new TributaryError('INVALID_ARGUMENT', 'rows to query have no columns');
  const seen = new Set<string>();
  for (const name of kinds.keys()) {
    // DuckDB column names are case-insensitive: `a` and `A` would be one column.
    const folded = name.toLowerCase();
    if (seen.has(folded))
      throw new TributaryError(
        'BAD_RECORD',
        `rows to query have two columns named ${JSON.stringify(name)} (case differs only)`,
      );
    seen.add(folded);
  }
  const columns = [...kinds].map(([name, set]) => ({
    name,
    type: set.size === 0 ? (nullTypes[name] ?? 'VARCHAR') : typeOf(set),
  }));
  // A replacer function slows JSON.stringify several times over: only for rows holding a bigint
  // (JSON.stringify refuses those, at any depth).
  const replacer = (_key: string, value: unknown) => (typeof value === 'bigint' ? value.toString() : value);
  const line = (row: Record<string, unknown>): string => {
    try {
      return JSON.stringify(row);
    } catch {
      return JSON.stringify(row, replacer);
    }
  };
  const ndjson = rows.map(line).join('\n');
  const structure = JSON.stringify(Object.fromEntries(columns.map((c) => [c.name, c.type])));
  return { ndjson, structure, columns };
}
