import { TributaryError } from '../core/index.js';

/** One column of a lake table: its name and DuckDB SQL type (`BIGINT`, `VARCHAR`, `DECIMAL(18,2)`…). */
export interface ColumnSchema {
  name: string;
  type: string;
}

/** Columns in order; partition columns are included with their types. Every column is nullable. */
export type TableSchema = ColumnSchema[];

const integerRank: Record<string, number> = { TINYINT: 1, SMALLINT: 2, INTEGER: 3, BIGINT: 4, HUGEINT: 5 };
const floatRank: Record<string, number> = { FLOAT: 1, DOUBLE: 2 };

/** Normalises spellings DuckDB treats as one type (INT8 = BIGINT, TEXT = VARCHAR…). */
export function canonicalType(type: string): string {
  const upper = type.trim().toUpperCase();
  const aliases: Record<string, string> = {
    INT8: 'BIGINT',
    LONG: 'BIGINT',
    INT4: 'INTEGER',
    INT: 'INTEGER',
    SIGNED: 'INTEGER',
    INT2: 'SMALLINT',
    SHORT: 'SMALLINT',
    INT1: 'TINYINT',
    FLOAT8: 'DOUBLE',
    FLOAT4: 'FLOAT',
    REAL: 'FLOAT',
    TEXT: 'VARCHAR',
    STRING: 'VARCHAR',
    BOOL: 'BOOLEAN',
    LOGICAL: 'BOOLEAN',
    BYTEA: 'BLOB',
    TIMESTAMPTZ: 'TIMESTAMP WITH TIME ZONE',
    DATETIME: 'TIMESTAMP',
  };
  return aliases[upper] ?? upper;
}

/**
 * The type a column keeps when files of `existing` and `incoming` type meet, or null when they
 * cannot be read as one column. Allowed: the same type, integer widening (INTEGER → BIGINT),
 * FLOAT → DOUBLE, and the untyped NULL column. DuckDB's `union_by_name` reads older files with the
 * widened type.
 */
export function widenType(existing: string, incoming: string): string | null {
  const a = canonicalType(existing);
  const b = canonicalType(incoming);
  if (a === b) return a;
  if (b === '"NULL"' || b === 'NULL') return a;
  if (a === '"NULL"' || a === 'NULL') return b;
  if (integerRank[a] !== undefined && integerRank[b] !== undefined)
    return integerRank[a] >= integerRank[b] ? a : b;
  if (floatRank[a] !== undefined && floatRank[b] !== undefined) return floatRank[a] >= floatRank[b] ? a : b;
  return null;
}

/**
 * Merges the schema of new files into a table's schema: new columns are appended (nullable, older
 * files read them as NULL); a column whose type cannot be widened is refused with SCHEMA_MISMATCH
 * naming the table and the column.
 */
export function mergeSchema(table: string, existing: TableSchema | null, incoming: TableSchema): TableSchema {
  if (existing === null) return incoming.map((c) => ({ name: c.name, type: canonicalType(c.type) }));
  const merged = existing.map((c) => ({ ...c }));
  const byName = new Map(merged.map((c) => [c.name.toLowerCase(), c]));
  for (const column of incoming) {
    const current = byName.get(column.name.toLowerCase());
    if (!current) {
      const added = { name: column.name, type: canonicalType(column.type) };
      merged.push(added);
      byName.set(column.name.toLowerCase(), added);
      continue;
    }
    const widened = widenType(current.type, column.type);
    if (widened === null) {
      throw new TributaryError(
        'SCHEMA_MISMATCH',
        `table ${table}: column ${current.name} has type ${current.type}; new data has ${canonicalType(column.type)}, which cannot be stored in it (only new nullable columns and widening such as INTEGER → BIGINT are merged)`,
        {
          details: {
            table,
            column: current.name,
            existingType: current.type,
            incomingType: canonicalType(column.type),
          },
        },
      );
    }
    current.type = widened;
  }
  return merged;
}

/** Double-quotes an identifier for DuckDB SQL. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Single-quotes a string literal for DuckDB SQL. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
