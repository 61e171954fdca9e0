import type { DuckDBType } from '@duckdb/node-api';
import { DuckDBTypeId } from '@duckdb/node-api';

export interface ResultColumn {
  name: string;
  type: string;
}

/**
 * JSON-friendly JS values: BIGINT/HUGEINT → number when within ±2^53 (else a decimal string, so
 * no digit is lost), DECIMAL → number, TIMESTAMP → ISO-8601 string, DATE → 'YYYY-MM-DD', BLOB →
 * base64, INTERVAL and TIME → DuckDB's text, lists/structs/maps recursively.
 */
export function toJsonValue(value: unknown, type?: DuckDBType): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') {
    if (type?.typeId === DuckDBTypeId.TIME || type?.typeId === DuckDBTypeId.TIME_NS)
      return formatTime(value, type.typeId === DuckDBTypeId.TIME_NS);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) {
    if (type?.typeId === DuckDBTypeId.DATE) return value.toISOString().slice(0, 10);
    return Number.isNaN(value.getTime()) ? null : value.toISOString();
  }
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (Array.isArray(value)) return value.map((v) => toJsonValue(v));
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if ('months' in record && 'days' in record && 'micros' in record && Object.keys(record).length === 3) {
      return `${String(record.months)} months ${String(record.days)} days ${String(record.micros)} us`;
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, toJsonValue(v)]));
  }
  return value;
}

function formatTime(value: bigint, nanos: boolean): string {
  const micros = nanos ? value / 1000n : value;
  const totalSeconds = Number(micros / 1_000_000n);
  const fraction = Number(micros % 1_000_000n);
  const pad = (n: number) => String(n).padStart(2, '0');
  const base = `${pad(Math.floor(totalSeconds / 3600))}:${pad(Math.floor(totalSeconds / 60) % 60)}:${pad(totalSeconds % 60)}`;
  return fraction === 0 ? base : `${base}.${String(fraction).padStart(6, '0')}`;
}
