import type { Log, LogRecord } from '../../log/index.js';
import {
  decodePayload,
  isoUtc,
  rawDocumentSchema,
  topics,
  windowCountSchema,
  windowStartOf,
  type WindowCount,
} from './payloads.js';
import { documentLimits } from './limits.js';

/** Name of the analytics stream job; its late side output is the topic `<job>.late`. */
export const analyticsJobName = 'documents.analytics';
export const analyticsLateTopic = `${analyticsJobName}.late`;

/**
 * Every topic of the pipeline: the counters read them all, and only the pipeline writes them (its
 * `internalTopics`: a forged raw record could relabel a document's company, a forged chunk be cited).
 */
export const documentTopics = [
  topics.raw,
  topics.chunks,
  topics.embeddings,
  topics.analytics,
  topics.rawDlq,
  analyticsLateTopic,
] as const;

async function recordsSince(
  log: Pick<Log, 'listTopics' | 'describeTopic' | 'offsetForTimestamp' | 'fetch'>,
  topic: string,
  sinceMs: number,
): Promise<LogRecord[]> {
  if (!(await log.listTopics()).includes(topic)) return [];
  const description = await log.describeTopic(topic);
  const out: LogRecord[] = [];
  for (const partition of description.partitions) {
    let offset = Math.max(
      await log.offsetForTimestamp(topic, partition.partition, sinceMs),
      partition.endOffset - documentLimits.statsScanRecordsMax,
      partition.startOffset,
    );
    while (offset < partition.endOffset) {
      const batch = await log.fetch(topic, partition.partition, offset, { maxRecords: 5_000 });
      if (batch.length === 0) break;
      for (const record of batch) if (record.timestamp >= sinceMs) out.push(record);
      offset = batch[batch.length - 1].offset + 1;
    }
  }
  return out;
}

/** Records in a topic (end minus start offsets over all partitions); 0 when the topic is absent. */
export async function topicRecordCount(
  log: Pick<Log, 'listTopics' | 'describeTopic'>,
  topic: string,
): Promise<number> {
  if (!(await log.listTopics()).includes(topic)) return 0;
  const description = await log.describeTopic(topic);
  return description.partitions.reduce((sum, p) => sum + p.endOffset - p.startOffset, 0);
}

export interface UploadBucket {
  minute: string;
  uploads: number;
}

/**
 * Uploads per minute (by upload time) since `sinceMs`, from `documents.raw`; restricted to one
 * company when `companyId` is given (tenant-bound callers).
 */
export async function uploadsPerMinute(
  log: Log,
  sinceMs: number,
  companyId?: string,
): Promise<UploadBucket[]> {
  const counts = new Map<number, number>();
  for (const record of await recordsSince(log, topics.raw, sinceMs)) {
    if (companyId !== undefined) {
      const payload = decodePayload(rawDocumentSchema, record.value, record);
      if (payload.company_id !== companyId) continue;
    }
    const minute = windowStartOf(record.timestamp);
    counts.set(minute, (counts.get(minute) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([minute, uploads]) => ({ minute: isoUtc(minute), uploads }));
}

/**
 * The analytics job's window results since `sinceMs` (by window time), newest result per
 * (company, window) — a window updated by a late record within allowed lateness counts once.
 */
export async function chunksPerMinute(log: Log, sinceMs: number, companyId?: string): Promise<WindowCount[]> {
  const latest = new Map<string, WindowCount>();
  for (const record of await recordsSince(log, topics.analytics, sinceMs)) {
    const payload = decodePayload(windowCountSchema, record.value, record);
    if (companyId !== undefined && payload.company_id !== companyId) continue;
    latest.set(`${payload.company_id}\u0000${payload.window_start}`, payload);
  }
  return [...latest.values()].sort(
    (a, b) => a.window_start.localeCompare(b.window_start) || a.company_id.localeCompare(b.company_id),
  );
}

export interface DocumentCounters {
  uploads: number;
  chunks: number;
  embeddings: number;
  windowResults: number;
  dlq: number;
  late: number;
}

function companyOfRecord(record: LogRecord): string | undefined {
  if (record.value === null) return undefined;
  try {
    const value = JSON.parse(Buffer.from(record.value).toString('utf8')) as unknown;
    const company =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>).company_id : undefined;
    return typeof company === 'string' ? company : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Totals for the dashboard tiles. Unbound callers get whole-topic counts (from offsets); a
 * company's counts are recounted from its own records (the most recent ones, bounded per partition).
 */
export async function documentCounters(log: Log, companyId?: string): Promise<DocumentCounters> {
  const names = documentTopics;
  const counts = await Promise.all(
    names.map(async (topic) => {
      if (companyId === undefined) return topicRecordCount(log, topic);
      const records = await recordsSince(log, topic, 0);
      return records.filter((record) => companyOfRecord(record) === companyId).length;
    }),
  );
  const [uploads, chunks, embeddings, windowResults, dlq, late] = counts as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { uploads, chunks, embeddings, windowResults, dlq, late };
}
