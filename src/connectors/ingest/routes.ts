import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import {
  childLogger,
  counter,
  isTributaryError,
  jsonAnswerKey,
  limits as coreLimits,
  parseJsonBounded,
  readRequestBody,
  requestHeader,
  systemClock,
  TributaryError,
  type Clock,
  type JsonAnswer,
} from '../../core/index.js';
import { offsetRanges, type Log, type PartitionOffsetRange, type ProducerRecord } from '../../log/index.js';
import { decodeBytes, formatFromName } from '../formats/decode.js';
import { IdempotencyStore } from './idempotency.js';
import { jsonArrayElements, startsAsJsonArray } from './json-array.js';

const requestsCounter = counter('tributary_ingest_requests_total', 'HTTP ingest requests by status', [
  'status',
]);
const recordsCounter = counter('tributary_ingest_records_total', 'Records accepted by HTTP ingest', [
  'topic',
]);
const logger = childLogger('ingest');

/** Options of the HTTP ingest endpoint (what can be configured; `log` is passed in code). */
export const ingestOptionsSchema = z
  .object({
    topicsAllowed: z
      .array(z.string().min(1))
      .min(1)
      .describe('Topics clients may post to ("*" = any existing or new topic).'),
    bodyBytesMax: z
      .number()
      .int()
      .min(1)
      .default(coreLimits.httpBodyBytesMax)
      .describe('Largest request body (413 beyond).'),
    recordsMax: z.number().int().min(1).default(10_000).describe('Most records per request (413 beyond).'),
    recordBytesMax: z
      .number()
      .int()
      .min(1)
      .default(1024 * 1024)
      .describe('Largest single record value (413 beyond).'),
    inFlightMax: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe('Concurrent requests being appended; more get 429 with Retry-After.'),
    idempotencyFile: z
      .string()
      .optional()
      .describe('File remembering Idempotency-Key results (durable across restarts); default in memory.'),
    idempotencyEntriesMax: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Idempotency keys remembered (oldest forgotten first).'),
    idempotencyTtlMs: z
      .number()
      .int()
      .min(1)
      .default(24 * 3600 * 1000)
      .describe('How long an Idempotency-Key is remembered.'),
    partitions: z.number().int().min(1).default(1).describe('Partitions of topics created on first post.'),
  })
  .strict();

export type IngestOptions = z.infer<typeof ingestOptionsSchema>;

export interface IngestRoutesConfig {
  log: Log;
  topicsAllowed: string[] | ((topic: string) => boolean);
  limits?: Partial<Pick<IngestOptions, 'bodyBytesMax' | 'recordsMax' | 'recordBytesMax' | 'inFlightMax'>>;
  idempotency?: { file?: string; entriesMax?: number; ttlMs?: number };
  partitions?: number;
  clock?: Clock;
  /** Told after every accepted append (declared `ingest` sources count records and positions). */
  onAppended?: (topic: string, records: number, offsets: PartitionOffsetRange[]) => void;
}

const topicName = /^[A-Za-z0-9._-]{1,249}$/;

/** Status and body for an error, as the API edge maps TributaryError codes. */
function errorResponse(error: TributaryError): {
  status: number;
  body: Record<string, unknown>;
  retryAfterS?: number;
} {
  const status =
    error.code === 'PAYLOAD_TOO_LARGE'
      ? 413
      : error.code === 'UNSUPPORTED_MEDIA_TYPE'
        ? 415
        : error.code === 'RATE_LIMITED'
          ? 429
          : error.code === 'STORAGE_FULL'
            ? 507
            : error.code === 'BACKPRESSURE' ||
                error.code === 'UNAVAILABLE' ||
                error.code === 'CLOSED' ||
                error.code === 'TIMEOUT'
              ? 503
              : error.code === 'FORBIDDEN'
                ? 403
                : error.code === 'CONFLICT'
                  ? 409
                  : error.code === 'VALIDATION_FAILED' && error.details.status === 422
                    ? 422
                    : error.domain === 'user'
                      ? 400
                      : 500;
  const body =
    status === 500 ? { error: { code: 'INTERNAL', message: 'internal error' } } : { error: error.toJSON() };
  const retryAfterS =
    error.retryAfterMs !== undefined
      ? Math.max(1, Math.ceil(error.retryAfterMs / 1000))
      : status === 503 || status === 429
        ? 1
        : undefined;
  return retryAfterS === undefined ? { status, body } : { status, body, retryAfterS };
}

function asValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Turns a request body into records. Formats (by Content-Type):
 *  - application/json: `[v, …]` (each element a record value, JSON text) or
 *    `{"records": [{"key"?, "value", "headers"?}, …]}` (string values kept as they are)
 *  - application/x-ndjson, application/jsonl, application/ndjson: one JSON value per line
 *  - text/plain: one record per line
 *  - multipart/form-data: every file part, decoded by its name (.txt .jsonl .ndjson .csv .json, .gz)
 */
async function parseRecords(
  topic: string,
  contentType: string,
  bytes: Uint8Array,
  o: Required<NonNullable<IngestRoutesConfig['limits']>>,
): Promise<ProducerRecord[]> {
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  const records: ProducerRecord[] = [];
  /** `where` names the record in errors; a number is an element index (no string per record). */
  const add = (record: ProducerRecord, where: string | number) => {
    if (records.length >= o.recordsMax)
      throw new TributaryError('PAYLOAD_TOO_LARGE', `more than ${o.recordsMax} records in one request`);
    const size =
      typeof record.value === 'string' ? Buffer.byteLength(record.value) : (record.value?.byteLength ?? 0);
    if (size > o.recordBytesMax)
      throw new TributaryError(
        'PAYLOAD_TOO_LARGE',
        `${typeof where === 'number' ? `record ${where}` : where}: record of ${size} bytes is larger than ${o.recordBytesMax} bytes`,
      );
    records.push(record);
  };
  const decodeInto = async (
    data: Uint8Array,
    name: string,
    format: 'txt' | 'jsonl' | 'csv' | 'json',
    gzip: boolean,
  ) => {
    // The record limit applies while decoding and the inflated size is capped, so a gzip "line
    // bomb" stops after `recordBytesMax` bytes of one line instead of being inflated whole.
    for await (const record of decodeBytes(data, {
      format,
      gzip,
      name,
      parse: false,
      recordBytesMax: o.recordBytesMax,
      decodedBytesMax: coreLimits.ingestInflatedBytesMax,
    }))
      add({ topic, value: record.value }, `${name} line ${record.line}`);
  };
  if (mediaType === 'application/json') {
    if (startsAsJsonArray(bytes)) {
      // Checked and sliced without building objects: each element's own bytes are its value.
      const elements = jsonArrayElements(bytes);
      for (let i = 0; i < elements.length; i++) add({ topic, value: elements[i] }, i);
      return records;
    }
    const parsed = parseJsonBounded(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      'request body',
    );
    if (
      parsed !== null &&
      typeof parsed === 'object' &&
      Array.isArray((parsed as { records?: unknown }).records)
    ) {
      (parsed as { records: unknown[] }).records.forEach((entry, i) => {
        if (entry === null || typeof entry !== 'object' || !('value' in entry)) {
          throw new TributaryError('BAD_RECORD', `records[${i}] needs a "value" field`, {
            details: { record: i, field: 'value' },
          });
        }
        const { key, value, headers } = entry as { key?: unknown; value: unknown; headers?: unknown };
        const headerMap: Record<string, string> = {};
        if (headers !== undefined) {
          if (headers === null || typeof headers !== 'object')
            throw new TributaryError('BAD_RECORD', `records[${i}].headers must be an object`, {
              details: { record: i, field: 'headers' },
            });
          for (const [name, headerValue] of Object.entries(headers))
            headerMap[name] = asValue(headerValue) ?? '';
        }
        add({ topic, key: asValue(key), value: asValue(value), headers: headerMap }, `records[${i}]`);
      });
    } else {
      throw new TributaryError('BAD_RECORD', 'a JSON body must be an array of records or {"records": [...]}');
    }
    return records;
  }
  if (
    mediaType === 'application/x-ndjson' ||
    mediaType === 'application/jsonl' ||
    mediaType === 'application/ndjson' ||
    mediaType === 'application/x-jsonlines'
  ) {
    await decodeInto(bytes, 'request body', 'jsonl', false);
    return records;
  }
  if (mediaType === 'text/plain') {
    await decodeInto(bytes, 'request body', 'txt', false);
    return records;
  }
  if (mediaType === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await new Response(Buffer.from(bytes), { headers: { 'content-type': contentType } }).formData();
    } catch (error) {
      throw new TributaryError(
        'DECODE_FAILED',
        `multipart body could not be parsed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    let files = 0;
    for (const [, part] of form as unknown as Iterable<[string, FormDataEntryValue]>) {
      if (typeof part === 'string') continue;
      files++;
      const format = formatFromName(part.name);
      if (format === null)
        throw new TributaryError(
          'UNSUPPORTED_MEDIA_TYPE',
          `file ${part.name}: unknown format; expected .txt .jsonl .ndjson .csv .json (optionally .gz)`,
        );
      await decodeInto(new Uint8Array(await part.arrayBuffer()), part.name, format.format, format.gzip);
    }
    if (files === 0) throw new TributaryError('BAD_RECORD', 'multipart body has no file part');
    return records;
  }
  throw new TributaryError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Type ${mediaType || '(none)'} is not accepted; use application/json, application/x-ndjson, text/plain or multipart/form-data`,
  );
}

/**
 * Hono sub-app for HTTP ingest; the serving layer mounts it (`app.route('/api/v1/ingest', routes)`).
 *
 *   POST /topics/:topic/records   → 200 {topic, records, offsets: [{partition, first, last}]}
 *
 * Answers 2xx only after `log.append` resolved (the records are durable). 413 body/record/count
 * limits, 415 Content-Type, 403 topic not allowed, 429 too many requests in flight, 503 when the
 * log pushes back or is unavailable (with Retry-After), 507 when the log's disk is full (nothing
 * acknowledged; retry once space is freed), 409/422 for Idempotency-Key misuse.
 *
 * @example
 * app.route('/ingest', createIngestRoutes({ log, topicsAllowed: ['events'] }));
 * // curl -H 'content-type: application/x-ndjson' -H 'Idempotency-Key: 7f3…' --data-binary @e.ndjson \
 * //   http://127.0.0.1:3000/ingest/topics/events/records
 */
export function createIngestRoutes(config: IngestRoutesConfig): Hono {
  const o = {
    bodyBytesMax: config.limits?.bodyBytesMax ?? coreLimits.httpBodyBytesMax,
    recordsMax: config.limits?.recordsMax ?? 10_000,
    recordBytesMax: config.limits?.recordBytesMax ?? 1024 * 1024,
    inFlightMax: config.limits?.inFlightMax ?? 64,
  };
  const clock = config.clock ?? systemClock;
  const allowed =
    typeof config.topicsAllowed === 'function'
      ? config.topicsAllowed
      : (topic: string) =>
          (config.topicsAllowed as string[]).includes(topic) ||
          (config.topicsAllowed as string[]).includes('*');
  const idempotency = new IdempotencyStore(config.idempotency ?? {});
  const ensured = new Set<string>();
  let inFlight = 0;
  const app = new Hono();

  app.post('/topics/:topic/records', async (c) => {
    const topic = c.req.param('topic');
    let idempotencyKey: string | null = null;
    let counted = false;
    const respond = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      requestsCounter.inc({ status: String(status) });
      const answer = c.get(jsonAnswerKey as never) as JsonAnswer | undefined;
      if (answer !== undefined) return answer(status, body, headers);
      for (const [name, value] of Object.entries(headers)) c.header(name, value);
      return c.json(body as object, status as 200);
    };
    try {
      if (!topicName.test(topic) || !allowed(topic))
        throw new TributaryError('FORBIDDEN', `posting to topic ${topic} is not allowed`);
      if (inFlight >= o.inFlightMax) {
        throw new TributaryError(
          'RATE_LIMITED',
          `more than ${o.inFlightMax} ingest requests in flight; retry shortly`,
          { retryAfterMs: 1000 },
        );
      }
      inFlight++;
      counted = true;
      const contentType = requestHeader(c, 'content-type') ?? '';
      const bytes = await readRequestBody(c, o.bodyBytesMax);
      const key = requestHeader(c, 'idempotency-key');
      if (key !== undefined) {
        if (key.length === 0 || key.length > 255)
          throw new TributaryError('BAD_RECORD', 'Idempotency-Key must be 1–255 characters');
        const requestHash = createHash('sha256').update(contentType).update('\0').update(bytes).digest('hex');
        const scoped = `${topic}\u0000${key}`;
        const stored = await idempotency.begin(scoped, requestHash, clock.now());
        if (stored) return respond(stored.status, stored.body, { 'idempotent-replayed': 'true' });
        idempotencyKey = scoped;
        const records = await parseRecords(topic, contentType, bytes, o);
        const body = await appendRecords(topic, records);
        await idempotency.complete(scoped, { requestHash, status: 200, body, atMs: clock.now() });
        idempotencyKey = null;
        return respond(200, body);
      }
      const records = await parseRecords(topic, contentType, bytes, o);
      return respond(200, await appendRecords(topic, records));
    } catch (error) {
      if (idempotencyKey !== null) idempotency.release(idempotencyKey);
      const known = isTributaryError(error) ? error : null;
      if (!known) logger.error({ err: error, topic }, 'ingest request failed');
      const mapped = errorResponse(known ?? new TributaryError('INTERNAL', 'internal error'));
      return respond(
        mapped.status,
        mapped.body,
        mapped.retryAfterS === undefined ? {} : { 'retry-after': String(mapped.retryAfterS) },
      );
    } finally {
      if (counted) inFlight--;
    }
  });

  async function appendRecords(topic: string, records: ProducerRecord[]) {
    if (records.length === 0) return { topic, records: 0, offsets: [] };
    if (!ensured.has(topic)) {
      await config.log.ensureTopic(topic, { partitions: config.partitions ?? 1 });
      ensured.add(topic);
    }
    const results = await config.log.append(records);
    recordsCounter.inc({ topic }, records.length);
    const offsets = offsetRanges(results);
    config.onAppended?.(topic, records.length, offsets);
    return { topic, records: records.length, offsets };
  }

  return app;
}
