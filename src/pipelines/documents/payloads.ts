import { z } from 'zod';
import { TributaryError } from '../../core/index.js';

/**
 * Topics of the `documents` pipeline and their payloads, exactly as seed 004's table:
 *
 * | topic              | key          | value (JSON)                                           |
 * |--------------------|--------------|--------------------------------------------------------|
 * | `documents.raw`    | document_id  | `{document_id, company_id, s3_path}`                   |
 * | `chunks.processed` | document_id  | `{chunk_id, document_id, company_id, text, page}`      |
 * | `embeddings.ready` | document_id  | `{chunk_id, document_id, company_id, vector}`          |
 * | `analytics.flink`  | company_id   | `{window_start, window_end, company_id, chunk_count}`  |
 *
 * Every record's timestamp is the upload time of its document: docproc and embedding copy the
 * input record's timestamp onto their outputs, so the analytics job's event time (and the lake
 * sink's hour partition) is the upload time, whatever the processing delay.
 */
export const topics = {
  raw: 'documents.raw',
  chunks: 'chunks.processed',
  embeddings: 'embeddings.ready',
  analytics: 'analytics.flink',
  rawDlq: 'documents.raw.dlq',
} as const;

/**
 * Partitions used when the pipeline creates a topic (Kafka's `num.partitions` default); a topic
 * that already exists is used as it is, whatever its partition count.
 */
export const defaultTopicPartitions = 1;

/** Company ids end up in storage paths and lake partitions, so they are restricted to a safe set. */
export const companyIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const companyId = z
  .string()
  .regex(
    companyIdPattern,
    'a company id: 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit',
  )
  .refine((value) => !value.includes('..'), 'a company id without ".."');
const nonEmpty = z.string().min(1);

export const rawDocumentSchema = z
  .object({ document_id: nonEmpty, company_id: companyId, s3_path: nonEmpty })
  .strict();
export const chunkSchema = z
  .object({
    chunk_id: nonEmpty,
    document_id: nonEmpty,
    company_id: companyId,
    text: z.string(),
    page: z.number().int().min(0),
  })
  .strict();
export const embeddingSchema = z
  .object({
    chunk_id: nonEmpty,
    document_id: nonEmpty,
    company_id: companyId,
    vector: z.array(z.number()).min(1),
  })
  .strict();
export const windowCountSchema = z
  .object({
    window_start: z.iso.datetime(),
    window_end: z.iso.datetime(),
    company_id: companyId,
    chunk_count: z.number().int().min(0),
  })
  .strict();

export type RawDocument = z.infer<typeof rawDocumentSchema>;
export type ChunkRecord = z.infer<typeof chunkSchema>;
export type EmbeddingRecord = z.infer<typeof embeddingSchema>;
export type WindowCount = z.infer<typeof windowCountSchema>;

export function isCompanyId(value: string): boolean {
  return companyId.safeParse(value).success;
}

/** Where a decoded record came from, for error messages. */
export interface RecordOrigin {
  topic: string;
  partition?: number;
  offset?: number;
}

/**
 * Decodes a JSON record value against a payload schema. A value that is not JSON or does not match
 * throws `DECODE_FAILED` / `SCHEMA_MISMATCH` naming the topic, partition, offset and field, which
 * the stream engine turns into a dead-letter record.
 */
export function decodePayload<T>(
  schema: z.ZodType<T>,
  value: Uint8Array | string | null,
  origin: RecordOrigin,
): T {
  const where = `${origin.topic}${origin.partition === undefined ? '' : `[${origin.partition}]`}${origin.offset === undefined ? '' : `@${origin.offset}`}`;
  if (value === null)
    throw new TributaryError('DECODE_FAILED', `${where}: record has no value`, { details: { ...origin } });
  const text =
    typeof value === 'string'
      ? value
      : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TributaryError('DECODE_FAILED', `${where}: value is not JSON (${(error as Error).message})`, {
      cause: error,
      details: { ...origin },
    });
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    throw new TributaryError(
      'SCHEMA_MISMATCH',
      `${where}: field "${field}": ${issue?.message ?? 'invalid'}`,
      { details: { ...origin, field } },
    );
  }
  return result.data;
}

/** JSON encoding of a payload; fields in the seed's order (the schemas are strict, so no extras). */
export function encodePayload(value: RawDocument | ChunkRecord | EmbeddingRecord | WindowCount): string {
  return JSON.stringify(value);
}

/** ISO-8601 UTC with milliseconds, e.g. `2026-11-22T10:01:00.000Z`. */
export function isoUtc(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

export const windowSizeMs = 60_000;
export const watermarkOutOfOrdernessMs = 5_000;

/** Start of the 1-minute tumbling window holding `timestampMs` (epoch-aligned, as Flink's). */
export function windowStartOf(timestampMs: number, sizeMs = windowSizeMs): number {
  return timestampMs - (((timestampMs % sizeMs) + sizeMs) % sizeMs);
}

export function windowCountPayload(
  companyId: string,
  windowStartMs: number,
  count: number,
  sizeMs = windowSizeMs,
): WindowCount {
  return {
    window_start: isoUtc(windowStartMs),
    window_end: isoUtc(windowStartMs + sizeMs),
    company_id: companyId,
    chunk_count: count,
  };
}
