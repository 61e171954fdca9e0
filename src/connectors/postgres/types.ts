import { TributaryError } from '../../core/index.js';

/** A source column: PostgreSQL type, the lake (DuckDB/Parquet) type it maps to, and its parser. */
export interface PgColumn {
  name: string;
  /** format_type() text, e.g. `numeric(12,2)`, `timestamp with time zone`. */
  pgType: string;
  /** DuckDB SQL type of the lake column (see `mapPgType`). */
  type: string;
  nullable: boolean;
}

/**
 * PostgreSQL → lake type mapping (DuckDB SQL types, written to Parquet as noted):
 *
 * | PostgreSQL                      | lake type                  | JS value in rows                      |
 * |---------------------------------|----------------------------|---------------------------------------|
 * | smallint / integer / bigint     | SMALLINT / INTEGER / BIGINT| number / number / bigint              |
 * | real / double precision         | FLOAT / DOUBLE             | number (NaN, ±Infinity kept)          |
 * | numeric(p,s), p ≤ 38            | DECIMAL(p,s)               | exact decimal string                  |
 * | numeric (unconstrained or p>38) | DOUBLE (documented loss)   | number                                |
 * | boolean                         | BOOLEAN                    | boolean                               |
 * | text, varchar, char, name, uuid, json(b), enums, arrays, others | VARCHAR | PostgreSQL text form  |
 * | date                            | DATE                       | 'YYYY-MM-DD'                          |
 * | timestamp                       | TIMESTAMP                  | 'YYYY-MM-DDTHH:MM:SS[.ffffff]'        |
 * | timestamptz                     | TIMESTAMP WITH TIME ZONE   | UTC 'YYYY-MM-DDTHH:MM:SS[.ffffff]Z'   |
 * | time                            | TIME                       | 'HH:MM:SS[.ffffff]'                   |
 * | bytea                           | BLOB                       | Uint8Array                            |
 *
 * Values are read as PostgreSQL's text output (session in UTC, DateStyle ISO) so no driver-side
 * parsing can shift a time zone or round a number. Unconstrained numeric has no fixed scale and
 * may exceed DECIMAL(38); it becomes DOUBLE — declare numeric(p,s) to keep exact decimals.
 * char(n) values lose their blank padding (PostgreSQL's own text cast of bpchar).
 * `infinity` dates/timestamps and numeric NaN in a DECIMAL column are refused (SCHEMA_MISMATCH).
 */
export function mapPgType(typeName: string, typmod: number, formatted: string): string {
  switch (typeName) {
    case 'int2':
      return 'SMALLINT';
    case 'int4':
      return 'INTEGER';
    case 'int8':
      return 'BIGINT';
    case 'float4':
      return 'FLOAT';
    case 'float8':
      return 'DOUBLE';
    case 'numeric': {
      if (typmod < 4) return 'DOUBLE';
      const precision = ((typmod - 4) >> 16) & 0xffff;
      const scale = (typmod - 4) & 0xffff;
      // Negative scales (PG 15+) and scale > precision have no DECIMAL equivalent.
      if (precision > 38 || scale > precision) return 'DOUBLE';
      return `DECIMAL(${precision},${scale})`;
    }
    case 'bool':
      return 'BOOLEAN';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return 'TIMESTAMP';
    case 'timestamptz':
      return 'TIMESTAMP WITH TIME ZONE';
    case 'time':
      return 'TIME';
    case 'bytea':
      return 'BLOB';
    default:
      void formatted;
      return 'VARCHAR';
  }
}

export type PgValueParser = (text: string, rowIndex: number) => unknown;

/** Parser from PostgreSQL text output to the JS value documented in `mapPgType`. */
export function pgValueParser(table: string, column: PgColumn): PgValueParser {
  const refuse = (text: string, rowIndex: number, why: string): never => {
    throw new TributaryError(
      'SCHEMA_MISMATCH',
      `${table}.${column.name} (${column.pgType}) row ${rowIndex}: ${why} (${JSON.stringify(text.slice(0, 40))})`,
      {
        details: { table, column: column.name, row: rowIndex },
      },
    );
  };
  const type = column.type;
  if (type === 'SMALLINT' || type === 'INTEGER') return (t) => Number(t);
  if (type === 'BIGINT') return (t) => BigInt(t);
  if (type === 'FLOAT' || type === 'DOUBLE') return (t) => (t === 'NaN' ? Number.NaN : Number(t));
  if (type.startsWith('DECIMAL'))
    return (t, i) =>
      t === 'NaN' || t.includes('Infinity') ? refuse(t, i, 'not representable as DECIMAL') : t;
  if (type === 'BOOLEAN') return (t) => t === 't' || t === 'true';
  if (type === 'DATE') {
    return (t, i) =>
      /^\d{4}-\d\d-\d\d$/.test(t) ? t : refuse(t, i, 'date outside the ISO year range (infinity or BC)');
  }
  if (type === 'TIMESTAMP' || type === 'TIMESTAMP WITH TIME ZONE') {
    const zoned = type !== 'TIMESTAMP';
    return (t, i) => {
      // ISO output: 'YYYY-MM-DD HH:MM:SS[.ffffff][+00]'; the session runs in UTC.
      const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)(?:\+00(?::00)?)?$/.exec(t);
      if (!match) return refuse(t, i, 'timestamp outside the ISO year range (infinity or BC)');
      return `${match[1]}T${match[2]}${zoned ? 'Z' : ''}`;
    };
  }
  if (type === 'BLOB') {
    return (t, i) =>
      t.startsWith('\\x')
        ? new Uint8Array(Buffer.from(t.slice(2), 'hex'))
        : refuse(t, i, 'bytea not in hex output format');
  }
  return (t) => t;
}
