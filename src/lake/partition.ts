import { TributaryError } from '../core/index.js';

/** The value Hive, Spark and DuckDB use in a path for a NULL partition value. */
export const hiveNullValue = '__HIVE_DEFAULT_PARTITION__';

/** A partition as column → value (null for SQL NULL), in partition-column order. */
export type PartitionValues = Record<string, string | null>;

/**
 * Hive partition path encoding, the same DuckDB's `PARTITION_BY` writes and its
 * `hive_partitioning` reader decodes:
 *
 *   `<col>=<value>` segments joined by '/', e.g. `date=2026-11-22/hour=05`.
 *
 * Each value is UTF-8 and percent-encoded except for `A-Z a-z 0-9 - _ . ~` (so '/', '=', '%',
 * spaces and non-ASCII are escaped: `a/b` → `a%2Fb`). NULL is written `__HIVE_DEFAULT_PARTITION__`;
 * a real string with that spelling is written with its first '_' escaped (`%5F_HIVE…`) so the two
 * never collide. Column names must be plain identifiers.
 */
export function encodePartitionValue(value: string | null): string {
  if (value === null) return hiveNullValue;
  const encoded = encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
  return encoded === hiveNullValue ? `%5F${encoded.slice(1)}` : encoded;
}

export function decodePartitionValue(encoded: string): string | null {
  if (encoded === hiveNullValue) return null;
  try {
    return decodeURIComponent(encoded);
  } catch (error) {
    throw new TributaryError(
      'CORRUPT_DATA',
      `partition value ${JSON.stringify(encoded)} is not valid percent-encoding`,
      { cause: error },
    );
  }
}

const columnPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkPartitionColumn(column: string): string {
  if (!columnPattern.test(column)) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `partition column ${JSON.stringify(column)} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)`,
    );
  }
  return column;
}

/** `{date: '2026-11-22', city: 'a/b'}` → `date=2026-11-22/city=a%2Fb`; '' when there are no columns. */
export function encodePartitionPath(values: PartitionValues): string {
  return Object.entries(values)
    .map(([column, value]) => `${checkPartitionColumn(column)}=${encodePartitionValue(value)}`)
    .join('/');
}

/** The inverse of `encodePartitionPath`; `columns`, when given, must match the segments in order. */
export function decodePartitionPath(partitionPath: string, columns?: readonly string[]): PartitionValues {
  const values: PartitionValues = {};
  if (partitionPath === '') {
    if (columns && columns.length > 0)
      throw new TributaryError(
        'CORRUPT_DATA',
        `empty partition path; expected columns ${columns.join(', ')}`,
      );
    return values;
  }
  const segments = partitionPath.split('/');
  segments.forEach((segment, index) => {
    const equals = segment.indexOf('=');
    if (equals <= 0)
      throw new TributaryError(
        'CORRUPT_DATA',
        `partition path ${JSON.stringify(partitionPath)}: segment ${JSON.stringify(segment)} is not column=value`,
      );
    const column = segment.slice(0, equals);
    if (columns && columns[index] !== column) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `partition path ${JSON.stringify(partitionPath)}: expected column ${columns[index] ?? '(none)'} at level ${index + 1}, found ${column}`,
      );
    }
    values[checkPartitionColumn(column)] = decodePartitionValue(segment.slice(equals + 1));
  });
  if (columns && segments.length !== columns.length) {
    throw new TributaryError(
      'CORRUPT_DATA',
      `partition path ${JSON.stringify(partitionPath)} has ${segments.length} levels; expected ${columns.length}`,
    );
  }
  return values;
}

/** How a JS value becomes a partition value string (dates as YYYY-MM-DD when at midnight UTC). */
export function partitionValueOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Date) {
    const iso = value.toISOString();
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso;
  }
  throw new TributaryError(
    'BAD_RECORD',
    `partition values must be strings, numbers, booleans or dates; got ${typeof value}`,
  );
}
