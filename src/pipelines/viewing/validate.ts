/**
 * The viewing event: one schema for every source (CSV header = these names). Validation checks
 * the fields in the table's order and stops at the first failing rule, whose code is the
 * quarantine reason. A valid event is normalised: enums lower-case, `country` upper-case,
 * `event_ts` in UTC epoch ms, numbers as numbers, empties as null.
 */
export const showTypes = ['movie', 'series', 'documentary', 'special'] as const;
export const eventTypes = ['play', 'pause', 'resume', 'stop', 'complete', 'rate'] as const;
export const devices = ['tv', 'mobile', 'web', 'tablet', 'console'] as const;

/** Field order of the schema (and of the CSV header the generator writes). */
export const eventFields = [
  'event_id',
  'user_id',
  'show_id',
  'show_title',
  'show_type',
  'season',
  'episode',
  'event_type',
  'event_ts',
  'watch_seconds',
  'position_seconds',
  'duration_seconds',
  'device',
  'country',
  'rating',
  'session_id',
] as const;

export interface ViewingEvent {
  event_id: string;
  user_id: string;
  show_id: string;
  show_title: string | null;
  show_type: (typeof showTypes)[number];
  season: number | null;
  episode: number | null;
  event_type: (typeof eventTypes)[number];
  /** UTC epoch ms. */
  event_ts: number;
  /** UTC date of event_ts, YYYY-MM-DD. */
  event_date: string;
  watch_seconds: number;
  position_seconds: number;
  duration_seconds: number;
  device: (typeof devices)[number];
  country: string;
  rating: number | null;
  session_id: string | null;
}

/** Reason codes, with the field where one applies (`missing_field:user_id`). */
export type QuarantineReason =
  | `missing_field:${string}`
  | `invalid_enum:${string}`
  | `invalid_number:${string}`
  | `negative_value:${string}`
  | 'invalid_timestamp'
  | 'future_timestamp'
  | 'position_exceeds_duration'
  | 'invalid_rating';

export type Validation = { ok: true; event: ViewingEvent } | { ok: false; reason: QuarantineReason };

/**
 * One string per distinct value of the fields that repeat across events (titles, enums, users,
 * dates): a valid event can sit in the lake sink's buffers until its partition rolls, and a
 * hundred thousand copies of "series" or of a show title are that many more objects for the
 * garbage collector to copy and mark. Bounded: past `sizeMax` values the table starts over.
 */
class Interned {
  readonly #values = new Map<string, string>();
  constructor(private readonly sizeMax: number) {}
  of(value: string): string {
    const known = this.#values.get(value);
    if (known !== undefined) return known;
    if (this.#values.size >= this.sizeMax) this.#values.clear();
    this.#values.set(value, value);
    return value;
  }
}
const interned = new Interned(65_536);

/** UTC date of an epoch-ms time, YYYY-MM-DD; the last day's text is reused (events come in runs). */
let lastDay = Number.NaN;
let lastDate = '';
function utcDate(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  if (day !== lastDay) {
    lastDate = interned.of(new Date(ms).toISOString().slice(0, 10));
    lastDay = day;
  }
  return lastDate;
}

/** How far ahead of the ingest time an event may be stamped (clock skew) before it is refused. */
export const futureToleranceMs = 5 * 60_000;

/** Missing: an absent key, null, or a string that is empty after trimming. */
function missing(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

function str(value: unknown): string {
  return typeof value === 'string' ? value.trim() : String(value);
}

/** A number field: a JSON number or a numeric string; NaN when it is neither. */
function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const trimmed = value.trim();
    return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  }
  return Number.NaN;
}

const isoWithOffset = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch ms of an ISO-8601 time with `Z` or `±hh:mm`, or of epoch milliseconds; NaN otherwise. */
export function parseEventTs(value: unknown): number {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : Number.NaN;
  if (typeof value !== 'string') return Number.NaN;
  const text = value.trim();
  if (/^\d{1,15}$/.test(text)) return Number(text);
  if (!isoWithOffset.test(text)) return Number.NaN;
  // JS Date accepts more than ISO; the pattern above already restricted the form.
  const ms = Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(ms) ? ms : Number.NaN;
}

const fail = (reason: QuarantineReason): Validation => ({ ok: false, reason });

function required(record: Record<string, unknown>, field: string): QuarantineReason | null {
  return missing(record[field]) ? `missing_field:${field}` : null;
}

type NumberField = 'season' | 'episode' | 'watch_seconds' | 'position_seconds' | 'duration_seconds';

/** A present field's number when it is one and not negative, else the reason. */
function nonNegative(record: Record<string, unknown>, field: NumberField): number | QuarantineReason {
  const value = num(record[field]);
  if (!Number.isFinite(value)) return `invalid_number:${field}`;
  if (value < 0) return `negative_value:${field}`;
  return value;
}

/** Seasons and episodes: optional, else a whole number from 1. */
function optionalCount(
  record: Record<string, unknown>,
  field: 'season' | 'episode',
): number | null | QuarantineReason {
  if (missing(record[field])) return null;
  const value = nonNegative(record, field);
  if (typeof value === 'string') return value;
  // Seasons and episodes count from 1: zero or a fraction is not a number of this field.
  if (!Number.isInteger(value) || value < 1) return `invalid_number:${field}`;
  return value;
}

/** A required non-negative amount of seconds, or the reason it is not one. */
function amount(
  record: Record<string, unknown>,
  field: 'watch_seconds' | 'position_seconds' | 'duration_seconds',
): number | QuarantineReason {
  return required(record, field) ?? nonNegative(record, field);
}

/**
 * Validates one record (a parsed JSON object, or a CSV row as an object of strings).
 * `ingestedAtMs` is when the platform received it (the log append time): an event stamped more
 * than five minutes after it is `future_timestamp`. The helpers above are module functions, not
 * closures made per call: this runs once per event.
 */
export function validateEvent(record: Record<string, unknown>, ingestedAtMs: number): Validation {
  let reason = required(record, 'event_id') ?? required(record, 'user_id') ?? required(record, 'show_id');
  if (reason) return fail(reason);
  // show_title: a string, optional.
  reason = required(record, 'show_type');
  if (reason) return fail(reason);
  const showType = str(record.show_type).toLowerCase();
  if (!(showTypes as readonly string[]).includes(showType)) return fail('invalid_enum:show_type');

  const season = optionalCount(record, 'season');
  if (typeof season === 'string') return fail(season);
  const episode = optionalCount(record, 'episode');
  if (typeof episode === 'string') return fail(episode);

  reason = required(record, 'event_type');
  if (reason) return fail(reason);
  const eventType = str(record.event_type).toLowerCase();
  if (!(eventTypes as readonly string[]).includes(eventType)) return fail('invalid_enum:event_type');

  reason = required(record, 'event_ts');
  if (reason) return fail(reason);
  const eventTs = parseEventTs(record.event_ts);
  if (Number.isNaN(eventTs)) return fail('invalid_timestamp');
  if (eventTs > ingestedAtMs + futureToleranceMs) return fail('future_timestamp');

  const watchSeconds = amount(record, 'watch_seconds');
  if (typeof watchSeconds === 'string') return fail(watchSeconds);
  const positionSeconds = amount(record, 'position_seconds');
  if (typeof positionSeconds === 'string') return fail(positionSeconds);
  const durationSeconds = amount(record, 'duration_seconds');
  if (typeof durationSeconds === 'string') return fail(durationSeconds);
  if (positionSeconds > durationSeconds + 60) return fail('position_exceeds_duration');

  reason = required(record, 'device');
  if (reason) return fail(reason);
  const device = str(record.device).toLowerCase();
  if (!(devices as readonly string[]).includes(device)) return fail('invalid_enum:device');

  reason = required(record, 'country');
  if (reason) return fail(reason);
  const country = str(record.country).toUpperCase();
  if (!/^[A-Z]{2}$/.test(country)) return fail('invalid_enum:country');

  let rating: number | null = null;
  if (eventType === 'rate') {
    const value = missing(record.rating) ? Number.NaN : num(record.rating);
    if (!Number.isInteger(value) || value < 1 || value > 5) return fail('invalid_rating');
    rating = value;
  } else if (!missing(record.rating)) {
    return fail('invalid_rating');
  }

  return {
    ok: true,
    event: {
      event_id: str(record.event_id),
      user_id: interned.of(str(record.user_id)),
      show_id: interned.of(str(record.show_id)),
      show_title: missing(record.show_title) ? null : interned.of(str(record.show_title)),
      show_type: interned.of(showType) as ViewingEvent['show_type'],
      season,
      episode,
      event_type: interned.of(eventType) as ViewingEvent['event_type'],
      event_ts: eventTs,
      event_date: utcDate(eventTs),
      watch_seconds: watchSeconds,
      position_seconds: positionSeconds,
      duration_seconds: durationSeconds,
      device: interned.of(device) as ViewingEvent['device'],
      country: interned.of(country),
      rating,
      session_id: missing(record.session_id) ? null : str(record.session_id),
    },
  };
}
