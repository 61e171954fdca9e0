import { TributaryError } from '../../core/index.js';

/** Column types of the file import; each maps to one lake (DuckDB) type. */
export const importTypes = ['int', 'float', 'bool', 'timestamp', 'string'] as const;
export type ImportType = (typeof importTypes)[number];

export const importTypeToLake: Record<ImportType, string> = {
  int: 'BIGINT',
  float: 'DOUBLE',
  bool: 'BOOLEAN',
  timestamp: 'TIMESTAMP WITH TIME ZONE',
  string: 'VARCHAR',
};

const intPattern = /^[+-]?\d+$/;
const floatPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(Infinity|NaN)$/;
const boolPattern = /^(true|false)$/i;
/** ISO 8601 date or date-time (T or space), optional fraction and zone. */
const timestampPattern = /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d(:?\d\d)?)?)?$/;

/** The narrowest type of one non-null value. */
export function typeOfValue(value: unknown): ImportType {
  switch (typeof value) {
    case 'number':
      return Number.isInteger(value) ? 'int' : 'float';
    case 'bigint':
      return 'int';
    case 'boolean':
      return 'bool';
    case 'string': {
      const text = value.trim();
      if (intPattern.test(text))
        return Number.isSafeInteger(Number(text)) || BigInt.asIntN(64, BigInt(text)) === BigInt(text)
          ? 'int'
          : 'string';
      if (floatPattern.test(text)) return 'float';
      if (boolPattern.test(text)) return 'bool';
      if (timestampPattern.test(text) && !Number.isNaN(Date.parse(normaliseTimestamp(text))))
        return 'timestamp';
      return 'string';
    }
    default:
      return value instanceof Date ? 'timestamp' : 'string';
  }
}

/** Least type both can be read as: int ⊂ float; anything else mixed is string. */
export function widenImportType(a: ImportType | null, b: ImportType): ImportType {
  if (a === null || a === b) return b;
  if ((a === 'int' && b === 'float') || (a === 'float' && b === 'int')) return 'float';
  return 'string';
}

/** Missing values: null, undefined, and the empty CSV field. */
export function isMissing(value: unknown): boolean {
  return value === null || value === undefined || value === '';
}

/** Infers each column's type from sample rows (missing values don't vote; all-missing → string). */
export function inferColumns(rows: readonly Record<string, unknown>[]): { name: string; type: ImportType }[] {
  const types = new Map<string, ImportType | null>();
  for (const row of rows) {
    for (const [name, value] of Object.entries(row)) {
      if (!types.has(name)) types.set(name, null);
      if (isMissing(value)) continue;
      types.set(name, widenImportType(types.get(name) ?? null, typeOfValue(value)));
    }
  }
  return [...types].map(([name, type]) => ({ name, type: type ?? 'string' }));
}

function normaliseTimestamp(text: string): string {
  // Date.parse reads 'YYYY-MM-DD HH:MM' only with a T; zone-less times are UTC by our convention.
  let t = text.replace(' ', 'T');
  if (t.length > 10) t = t.replace(/([+-]\d\d)$/, '$1:00');
  if (t.length > 10 && !/(Z|[+-]\d\d:?\d\d)$/.test(t)) t += 'Z';
  if (t.length === 10) t += 'T00:00:00Z';
  return t;
}

/** Converts a raw value to the column type; throws VALIDATION_FAILED with the reason. */
export function convertValue(value: unknown, type: ImportType): unknown {
  if (isMissing(value)) return null;
  const fail = (why: string): never => {
    throw new TributaryError('VALIDATION_FAILED', why);
  };
  const text = typeof value === 'string' ? value.trim() : value;
  switch (type) {
    case 'int':
      if (typeof text === 'bigint') return text;
      if (typeof text === 'number')
        return Number.isInteger(text) ? BigInt(text) : fail(`${text} is not an integer`);
      if (typeof text === 'string' && intPattern.test(text)) {
        const big = BigInt(text);
        return BigInt.asIntN(64, big) === big ? big : fail(`${text} does not fit a 64-bit integer`);
      }
      return fail(`${JSON.stringify(value)} is not an integer`);
    case 'float':
      if (typeof text === 'number') return text;
      if (typeof text === 'bigint') return Number(text);
      if (typeof text === 'string' && floatPattern.test(text)) return Number(text);
      return fail(`${JSON.stringify(value)} is not a number`);
    case 'bool':
      if (typeof text === 'boolean') return text;
      if (typeof text === 'string' && boolPattern.test(text)) return text.toLowerCase() === 'true';
      return fail(`${JSON.stringify(value)} is not true/false`);
    case 'timestamp': {
      if (text instanceof Date) return text;
      if (typeof text === 'string' && timestampPattern.test(text)) {
        const ms = Date.parse(normaliseTimestamp(text));
        if (!Number.isNaN(ms)) return new Date(ms);
      }
      return fail(`${JSON.stringify(value)} is not an ISO 8601 timestamp`);
    }
    case 'string':
      return typeof value === 'string'
        ? value
        : typeof value === 'bigint'
          ? value.toString()
          : (JSON.stringify(value) ?? '');
  }
}
