import type { ValueFormat } from '../page-types.js';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? integer.format(value) : decimal.format(value)} ${units[unit]}`;
}

/** "12 s ago", "3 min ago"; "—" for missing times. */
export function formatAge(epochMs: number | null | undefined, nowMs = Date.now()): string {
  if (epochMs === null || epochMs === undefined) return '—';
  const seconds = Math.max(0, Math.round((nowMs - epochMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

/** Display text of any JSON value (objects as JSON, not "[object Object]"). */
export function textOf(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return value.toString();
  return JSON.stringify(value);
}

/** A table cell: numbers formatted, ISO timestamps shortened to `YYYY-MM-DD HH:MM:SS`. */
export function formatCell(value: unknown): string {
  if (typeof value === 'number') return formatValue(value);
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value))
    return value.slice(0, 19).replace('T', ' ');
  return textOf(value);
}

export function formatTime(value: unknown): string {
  const date =
    typeof value === 'number' ? new Date(value) : typeof value === 'string' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) return textOf(value);
  return date.toISOString().slice(11, 16);
}

export function formatValue(value: unknown, format: ValueFormat = 'number'): string {
  if (value === null || value === undefined) return '—';
  if (format === 'text') return textOf(value);
  if (format === 'time') return formatTime(value);
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(number)) return textOf(value);
  switch (format) {
    case 'integer':
      return integer.format(number);
    case 'bytes':
      return formatBytes(number);
    case 'ms':
      return number >= 1000 ? `${decimal.format(number / 1000)} s` : `${integer.format(number)} ms`;
    case 'percent':
      return `${decimal.format(number * 100)} %`;
    default:
      return Math.abs(number) >= 1000 ? integer.format(number) : decimal.format(number);
  }
}
