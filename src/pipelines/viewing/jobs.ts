import { createHash } from 'node:crypto';
import type { Lake } from '../../lake/index.js';
import type { Log, LogRecord } from '../../log/index.js';
import {
  bucketColumn,
  lakeSink,
  lakeTableTarget,
  sinkWhere,
  stream,
  topicSink,
  tumbling,
  type StreamJob,
} from '../../stream/index.js';
import { validateEvent, type QuarantineReason, type ViewingEvent } from './validate.js';

export const topics = {
  /** Every record from every source, keyed by user_id (the log's murmur2 partitioner). */
  events: 'viewing.events',
  /** Valid, de-duplicated events (the live job's input). */
  valid: 'viewing.valid',
  /** One-minute windows per show (distinct viewers, watch seconds). */
  live: 'viewing.live',
} as const;

export const tables = {
  bronze: 'bronze.viewing_events',
  quarantine: 'silver.viewing_quarantine',
  duplicates: 'silver.viewing_duplicates',
  showEngagement: 'gold.show_engagement',
  dailyEngagement: 'gold.daily_engagement',
  userActivity: 'gold.user_activity',
  deviceMix: 'gold.device_mix',
  anomalies: 'gold.viewing_anomalies',
  alsoWatched: 'gold.also_watched',
} as const;

export const validateJobName = 'viewing.validate';
export const liveJobName = 'viewing.live';

/** Buckets of `user_bucket`: Kafka's murmur2 of the UTF-8 user_id, sign bit cleared, mod 16. */
export const userBuckets = 16;

/** Header naming where a record came from: a file name, `api` (the JSON stream endpoint) or `poller`. */
export const sourceHeader = 'tributary.source';

/** A record of `viewing.events` as the validation job sees it. */
export interface IncomingEvent {
  raw: string;
  source: string;
  /** Log append time: the ingest time `future_timestamp` is judged against. */
  ingestedAtMs: number;
  /** Set by the spool when the record could not be decoded (a malformed CSV row). */
  decodeError?: string;
}

export type ViewingReason = QuarantineReason | 'malformed_record';

export type RoutedEvent =
  | { kind: 'valid'; event: ViewingEvent; source: string }
  | { kind: 'quarantined'; eventId: string | null; reason: ViewingReason; source: string; raw: string }
  | { kind: 'duplicate'; eventId: string; source: string };

const utf8 = (bytes: Uint8Array | null | undefined) =>
  bytes === null || bytes === undefined
    ? undefined
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

/**
 * The last source name decoded and its bytes: records of one file come in runs, so a header with
 * the same bytes is the same name, reused without decoding it again (and each valid row that
 * keeps it shares one string).
 */
let lastSource = '';
let lastSourceBytes: Uint8Array | null = null;

function sourceOf(bytes: Uint8Array | undefined): string | undefined {
  if (bytes === undefined) return undefined;
  const last = lastSourceBytes;
  if (last !== null && last.length === bytes.length) {
    let same = true;
    for (let i = 0; i < bytes.length && same; i++) same = bytes[i] === last[i];
    if (same) return lastSource;
  }
  lastSource = utf8(bytes)!;
  // A copy: the header is a view into a log batch, which a kept view would keep alive.
  lastSourceBytes = new Uint8Array(bytes);
  return lastSource;
}

export function decodeIncoming(record: LogRecord): IncomingEvent {
  const decodeError = utf8(record.headers['tributary.decode-error']);
  const source =
    sourceOf(record.headers[sourceHeader]) ?? sourceOf(record.headers['tributary.file']) ?? 'unknown';
  const incoming: IncomingEvent = { raw: utf8(record.value) ?? '', source, ingestedAtMs: record.timestamp };
  if (decodeError !== undefined) incoming.decodeError = decodeError;
  return incoming;
}

interface Classified {
  routed: RoutedEvent;
  /** What a repeat is recognised by: the event_id, else the record's bytes. */
  dedupKey: string;
}

/** Dedup key of a record without a usable event_id: a digest of its bytes. */
function rawKey(raw: string): string {
  return `raw:${createHash('sha1').update(raw).digest('hex')}`;
}

export function classify(incoming: IncomingEvent): Classified {
  let record: unknown;
  if (incoming.decodeError === undefined) {
    try {
      record = JSON.parse(incoming.raw);
    } catch {
      record = undefined;
    }
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return {
      routed: {
        kind: 'quarantined',
        eventId: null,
        reason: 'malformed_record',
        source: incoming.source,
        raw: incoming.raw,
      },
      dedupKey: rawKey(incoming.raw),
    };
  }
  const fields = record as Record<string, unknown>;
  const result = validateEvent(fields, incoming.ingestedAtMs);
  if (result.ok) {
    return {
      routed: { kind: 'valid', event: result.event, source: incoming.source },
      dedupKey: `id:${result.event.event_id}`,
    };
  }
  const id =
    typeof fields.event_id === 'string' && fields.event_id.trim() !== ''
      ? fields.event_id.trim()
      : typeof fields.event_id === 'number'
        ? String(fields.event_id)
        : null;
  return {
    routed: {
      kind: 'quarantined',
      eventId: id,
      reason: result.reason,
      source: incoming.source,
      raw: incoming.raw,
    },
    dedupKey: id === null ? rawKey(incoming.raw) : `id:${id}`,
  };
}

/**
 * Bronze row: the valid event and where it came from. `event_ts` stays epoch ms: the column is a
 * TIMESTAMP (`bronzeTypes`), which the lake writer fills from milliseconds without a Date per row.
 *
 * Spelled out field by field rather than `{ ...event, source }`: V8 gives each object made by a
 * spread followed by another property its own hidden class, so a spread row costs a map per row,
 * and every later pass over the buffered rows (column inference, the spill's JSON, the Parquet
 * appender's reads) goes megamorphic. The literal shares one class; `satisfies` keeps it in step
 * with `ViewingEvent` (a missing or extra field does not compile).
 */
export function bronzeRow(event: ViewingEvent, source: string): Record<string, unknown> {
  return {
    event_id: event.event_id,
    user_id: event.user_id,
    show_id: event.show_id,
    show_title: event.show_title,
    show_type: event.show_type,
    season: event.season,
    episode: event.episode,
    event_type: event.event_type,
    event_ts: event.event_ts,
    event_date: event.event_date,
    watch_seconds: event.watch_seconds,
    position_seconds: event.position_seconds,
    duration_seconds: event.duration_seconds,
    device: event.device,
    country: event.country,
    rating: event.rating,
    session_id: event.session_id,
    source,
  } satisfies ViewingEvent & { source: string };
}

export const bronzeTypes: Record<string, string> = {
  event_id: 'VARCHAR',
  user_id: 'VARCHAR',
  show_id: 'VARCHAR',
  show_title: 'VARCHAR',
  show_type: 'VARCHAR',
  season: 'INTEGER',
  episode: 'INTEGER',
  event_type: 'VARCHAR',
  event_ts: 'TIMESTAMP',
  event_date: 'DATE',
  watch_seconds: 'DOUBLE',
  position_seconds: 'DOUBLE',
  duration_seconds: 'DOUBLE',
  device: 'VARCHAR',
  country: 'VARCHAR',
  rating: 'INTEGER',
  session_id: 'VARCHAR',
  source: 'VARCHAR',
  user_bucket: 'INTEGER',
};

export interface ViewingJobDeps {
  log: Log;
  lake: Lake;
  checkpointIntervalMs?: number;
  /** Overrides for tests (roll sizes). */
  sink?: { flushSize?: number; rotateIntervalMs?: number; idleMs?: number };
  /** Called with every quarantined or duplicate record (Prometheus counters). */
  onOutcome?: (routed: RoutedEvent) => void;
}

/**
 * Validation: every record of `viewing.events` is exactly one of valid (→ `bronze.viewing_events`,
 * partitioned by `event_date`, `show_type` and `user_bucket`, and → `viewing.valid`), quarantined
 * (→ `silver.viewing_quarantine` with the first failing rule) or a duplicate of an event_id seen
 * before (→ `silver.viewing_duplicates`), so in = valid + quarantined + duplicates, table by table.
 * The first occurrence of an event_id in ingestion order wins; the seen ids are keyed state,
 * checkpointed with the tables' commits, so a replay or a re-ingested file changes no table.
 */
export function viewingValidateJob(deps: ViewingJobDeps): StreamJob {
  const sinkOptions = {
    flushSize: deps.sink?.flushSize ?? 50_000,
    rotateIntervalMs: deps.sink?.rotateIntervalMs ?? 86_400_000,
    idleMs: deps.sink?.idleMs ?? 2_000,
  };
  const onOutcome = deps.onOutcome;
  return stream(validateJobName, { checkpointIntervalMs: deps.checkpointIntervalMs ?? 2_000 })
    .from<IncomingEvent>(deps.log, { topics: [topics.events], decode: decodeIncoming })
    .map(classify)
    .keyBy((c) => c.dedupKey)
    .process<RoutedEvent>((c, ctx) => {
      const seen = ctx.valueState<1>('seen');
      if (seen.get() === 1) {
        const eventId = c.dedupKey.startsWith('id:') ? c.dedupKey.slice(3) : c.dedupKey;
        const duplicate: RoutedEvent = { kind: 'duplicate', eventId, source: c.routed.source };
        onOutcome?.(duplicate);
        ctx.emit(duplicate);
        return;
      }
      seen.set(1);
      if (c.routed.kind !== 'valid') onOutcome?.(c.routed);
      ctx.emit(c.routed, c.routed.kind === 'valid' ? c.routed.event.event_ts : undefined);
    })
    .to(
      sinkWhere(
        (r) => r.kind === 'valid',
        lakeSink<Extract<RoutedEvent, { kind: 'valid' }>>(
          lakeTableTarget(deps.lake.table(tables.bronze), { types: bronzeTypes }),
          {
            ...sinkOptions,
            pathFormat: null,
            partitionBy: ['event_date', 'show_type', bucketColumn('user_bucket', 'user_id', userBuckets)],
            // Weeks of history span days × 4 show types × 16 buckets partitions at once; fewer
            // open buffers would roll the same partitions again and again into small files.
            openPartitionsMax: 4096,
            row: (r) => bronzeRow(r.event, r.source),
          },
        ),
        (r) => r as Extract<RoutedEvent, { kind: 'valid' }>,
      ),
      sinkWhere(
        (r) => r.kind === 'valid',
        topicSink<ViewingEvent>(topics.valid, { key: (e) => e.user_id }),
        (r) => (r as Extract<RoutedEvent, { kind: 'valid' }>).event,
      ),
      sinkWhere(
        (r) => r.kind === 'quarantined',
        lakeSink<Extract<RoutedEvent, { kind: 'quarantined' }>>(
          lakeTableTarget(deps.lake.table(tables.quarantine), {
            types: { event_id: 'VARCHAR', reason: 'VARCHAR', source: 'VARCHAR', raw: 'VARCHAR' },
          }),
          {
            ...sinkOptions,
            pathFormat: "'ingest_date'=YYYY-MM-dd",
            row: (r) => ({ event_id: r.eventId, reason: r.reason, source: r.source, raw: r.raw }),
          },
        ),
        (r) => r as Extract<RoutedEvent, { kind: 'quarantined' }>,
      ),
      sinkWhere(
        (r) => r.kind === 'duplicate',
        lakeSink<Extract<RoutedEvent, { kind: 'duplicate' }>>(
          lakeTableTarget(deps.lake.table(tables.duplicates), {
            types: { event_id: 'VARCHAR', source: 'VARCHAR' },
          }),
          {
            ...sinkOptions,
            pathFormat: "'ingest_date'=YYYY-MM-dd",
            row: (r) => ({ event_id: r.eventId, source: r.source }),
          },
        ),
        (r) => r as Extract<RoutedEvent, { kind: 'duplicate' }>,
      ),
    );
}

export interface LiveWindow {
  show_id: string;
  window_start: string;
  window_end: string;
  viewers: number;
  watch_seconds: number;
  final: boolean;
}

/**
 * Live tiles: one-minute event-time windows per show over the valid events (distinct viewers,
 * watch seconds), early results every few seconds and the final one at the watermark → topic
 * `viewing.live` (and `onWindow`, the dashboard's SSE feed).
 */
export function viewingLiveJob(deps: {
  log: Log;
  onWindow?: (w: LiveWindow) => void;
  checkpointIntervalMs?: number;
}): StreamJob {
  type Acc = { viewers: string[]; watch: number };
  return stream(liveJobName, { checkpointIntervalMs: deps.checkpointIntervalMs ?? 5_000 })
    .from<ViewingEvent>(deps.log, {
      topics: [topics.valid],
      timestamp: (e) => e.event_ts,
      outOfOrdernessMs: 30_000,
    })
    .keyBy((e) => e.show_id)
    .window(tumbling({ sizeMs: 60_000 }), { earlyEveryMs: 2_000 })
    .aggregate<Acc, Acc>({
      init: () => ({ viewers: [], watch: 0 }),
      add: (acc, e) => {
        if (!acc.viewers.includes(e.user_id)) acc.viewers.push(e.user_id);
        acc.watch += e.watch_seconds;
        return acc;
      },
    })
    .map((w): LiveWindow => {
      const window: LiveWindow = {
        show_id: String(w.key),
        window_start: new Date(w.windowStart).toISOString(),
        window_end: new Date(w.windowEnd).toISOString(),
        viewers: w.value.viewers.length,
        watch_seconds: w.value.watch,
        final: w.kind !== 'early',
      };
      deps.onWindow?.(window);
      return window;
    })
    .to(topicSink<LiveWindow>(topics.live, { key: (w) => w.show_id }));
}
