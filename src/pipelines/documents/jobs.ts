import { TributaryError } from '../../core/index.js';
import type { LakeTable, PendingFiles, Storage } from '../../lake/index.js';
import type { Log } from '../../log/index.js';
import { indexSink, type IndexWriter } from '../../ml/index.js';
import {
  callbackSink,
  lakeSink,
  stream,
  topicSink,
  tumbling,
  type JobOptions,
  type Sink,
  type StreamJob,
  type TwoPhaseTable,
} from '../../stream/index.js';
import type { z } from 'zod';
import {
  defaultTopicPartitions,
  chunkSchema,
  encodePayload,
  rawDocumentSchema,
  topics,
  windowCountPayload,
  windowSizeMs,
  watermarkOutOfOrdernessMs,
  companyIdPattern,
  type WindowCount,
} from './payloads.js';
import {
  createEmbeddingStage,
  processDocument,
  type DocprocDeps,
  type EmbeddedChunk,
  type IndexedChunk,
  type EmbeddingDeps,
} from './stages.js';
import { documentLimits } from './limits.js';
import { analyticsJobName } from './stats.js';

/** Stages a worker process can run (`tributary worker documents --stage …`). */
export const documentStages = ['docproc', 'embedding', 'analytics', 'sink'] as const;
export type DocumentStage = (typeof documentStages)[number];

/** Bronze tables of the lake sink (seed 004's Kafka Connect HDFS sink), one per topic. */
export const bronzeTables = {
  [topics.raw]: 'documents_raw',
  [topics.chunks]: 'chunks_processed',
  [topics.embeddings]: 'embeddings_ready',
} as const;

/** The seed's `hdfs-sink-connector.properties`, as lake sink settings. */
export const lakeSinkSettings = {
  pathFormat: "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH",
  flushSize: 1000,
  rotateIntervalMs: 600_000,
  /** Roll a partition that received nothing for this long (wall time), so quiet hours land too. */
  idleMs: 60_000,
} as const;

export interface DocumentJobsDeps extends Omit<DocprocDeps, 'storage'>, Omit<EmbeddingDeps, 'storage'> {
  log: Log;
  /** The retrieval index the embedding stage adds vectors to (saved at each checkpoint). */
  index?: IndexWriter<IndexedChunk>;
  /** Lake storage backend holding the uploaded originals. */
  storage: Pick<Storage, 'root' | 'get' | 'list'>;
  /** Bronze tables by name (`documents_raw`, `chunks_processed`, `embeddings_ready`). */
  bronzeTable: (name: string) => LakeTable;
  /** Chunks per embedder call. Default `documentLimits.embedBatchSizeMax` (64). */
  embedBatchSizeMax?: number;
  /** Documents extracted concurrently by docproc. Default 2 (extraction is CPU-bound). */
  docprocConcurrency?: number;
  /** Called with every final window result (dashboards' live chart). */
  onWindow?: (result: WindowCount) => void;
  /** Overrides for tests (roll sizes); default the seed's connector settings. */
  sink?: Partial<typeof lakeSinkSettings>;
  /** Partitions when the pipeline creates its topics. Default 1 (Kafka's num.partitions). */
  topicPartitions?: number;
  /** Wall time between checkpoints of unbounded runs. Default the engine's (10 s). */
  checkpointIntervalMs?: number;
}

function jobOptions(deps: { checkpointIntervalMs?: number | undefined }): JobOptions {
  return deps.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: deps.checkpointIntervalMs };
}

/** Validates a decoded payload with a zod schema; failures name the field (→ DLQ with the reason). */
function validator<T>(schema: z.ZodType<T>, topic: string): (value: unknown) => T {
  return (value) => {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    throw new TributaryError(
      'SCHEMA_MISMATCH',
      `${topic}: field "${issue?.path.join('.') ?? ''}": ${issue?.message ?? 'invalid'}`,
    );
  };
}

/** The analytics job only needs a company; replays may carry extra fields (e.g. `ts`). */
function companyOf(topic: string): (value: unknown) => { company_id: string } {
  return (value) => {
    const company =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>).company_id : undefined;
    if (typeof company !== 'string' || !companyIdPattern.test(company)) {
      throw new TributaryError(
        'SCHEMA_MISMATCH',
        `${topic}: field "company_id" is missing or not a company id`,
      );
    }
    return value as { company_id: string };
  };
}

function objectRow(topic: string): (value: unknown) => Record<string, unknown> {
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TributaryError('SCHEMA_MISMATCH', `${topic}: value must be a JSON object`);
    }
    return value as Record<string, unknown>;
  };
}

/** Staged lake files as the stream engine's two-phase lake sink keeps them in its checkpoints. */
type StagedLakeFiles = {
  path: string;
  partition: Record<string, string | null>;
  rows: number;
  pending: PendingFiles;
};

/**
 * Adapts a lake table to the stream engine's two-phase sink contract: rows are staged with their
 * time partition as Hive partition columns (`year`, `month`, `day`, `hour`) under the sink's
 * deterministic file name, and committed with the checkpoint's commit id (idempotent on replay).
 */
export function twoPhaseLakeTable(table: LakeTable, source: string): TwoPhaseTable {
  return {
    name: table.qualifiedName,
    async stage(rows, options) {
      const columns = Object.keys(options.partition);
      const withPartition = rows.map((row) => ({ ...row, ...options.partition }));
      const pending = await table.stage(withPartition, {
        partitionBy: columns,
        fileName: options.fileName.replace(/\.parquet$/, ''),
        source,
      });
      const staged: StagedLakeFiles = {
        path: pending.files[0]?.path ?? '',
        partition: options.partition,
        rows: rows.length,
        pending,
      };
      return staged;
    },
    async commit(options) {
      const add = options.add.map((file) => (file as unknown as StagedLakeFiles).pending);
      await table.commit({ commitId: options.commitId, add });
    },
  };
}

/** docproc: `documents.raw` → extraction + chunking → `chunks.processed`; failures → `documents.raw.dlq`. */
export function docprocJob(deps: DocumentJobsDeps): StreamJob {
  return stream('documents.docproc', jobOptions(deps))
    .from(deps.log, { topics: [topics.raw], validate: validator(rawDocumentSchema, topics.raw) })
    .mapAsync((document) => processDocument(document, deps), { concurrency: deps.docprocConcurrency ?? 2 })
    .flatMap((chunks) => chunks)
    .to(
      topicSink(topics.chunks, {
        key: (chunk) => chunk.document_id,
        partitions: deps.topicPartitions ?? defaultTopicPartitions,
      }),
    );
}

/** embedding: `chunks.processed` → batched embeddings (+ retrieval index) → `embeddings.ready`. */
export function embeddingJob(deps: DocumentJobsDeps): StreamJob {
  const embed = createEmbeddingStage(deps);
  const sinks: Sink<EmbeddedChunk>[] = [
    topicSink(topics.embeddings, {
      key: (embedded) => embedded.record.document_id,
      value: (embedded) => encodePayload(embedded.record),
      partitions: deps.topicPartitions ?? defaultTopicPartitions,
    }),
  ];
  if (deps.index)
    sinks.push(indexSink(deps.index, (embedded: EmbeddedChunk) => embedded.indexed, 'index:documents'));
  return stream('documents.embedding', jobOptions(deps))
    .from(deps.log, { topics: [topics.chunks], validate: validator(chunkSchema, topics.chunks) })
    .mapBatchAsync(embed, { batchSizeMax: deps.embedBatchSizeMax ?? documentLimits.embedBatchSizeMax })
    .to(...sinks);
}

/**
 * The seed's Flink job: `embeddings.ready` keyed by company_id, 1-minute tumbling event-time
 * windows (event time = record timestamp = upload time), watermark with 5 s bounded
 * out-of-orderness, `chunk_count` per window → `analytics.flink` keyed by company_id. Late records
 * go to the side output `documents.analytics.late`.
 */
export function analyticsJob(
  deps: Pick<DocumentJobsDeps, 'log' | 'onWindow' | 'topicPartitions' | 'checkpointIntervalMs'>,
): StreamJob {
  const sinks: Sink<WindowCount>[] = [
    topicSink(topics.analytics, {
      key: (r) => r.company_id,
      partitions: deps.topicPartitions ?? defaultTopicPartitions,
    }),
  ];
  const onWindow = deps.onWindow;
  if (onWindow) sinks.push(callbackSink((result) => onWindow(result), 'documents.live'));
  return stream(analyticsJobName, jobOptions(deps))
    .from(deps.log, {
      topics: [topics.embeddings],
      validate: companyOf(topics.embeddings),
      outOfOrdernessMs: watermarkOutOfOrdernessMs,
    })
    .keyBy((record) => record.company_id)
    .window(tumbling({ sizeMs: windowSizeMs }))
    .count()
    .map((window) => windowCountPayload(String(window.key), window.windowStart, window.value))
    .to(...sinks);
}

/** The lake sink: one job per topic → `bronze.<table>` partitioned by record time. */
export function sinkJobs(
  deps: Pick<DocumentJobsDeps, 'log' | 'bronzeTable' | 'sink' | 'checkpointIntervalMs'>,
): StreamJob[] {
  const settings = { ...lakeSinkSettings, ...deps.sink };
  return Object.entries(bronzeTables).map(([topic, table]) =>
    stream(`documents.sink.${table}`, jobOptions(deps))
      .from(deps.log, { topics: [topic], validate: objectRow(topic) })
      .to(
        lakeSink(twoPhaseLakeTable(deps.bronzeTable(table), topic), {
          pathFormat: settings.pathFormat,
          flushSize: settings.flushSize,
          rotateIntervalMs: settings.rotateIntervalMs,
          idleMs: settings.idleMs,
        }),
      ),
  );
}

/** Every stream job of the pipeline by stage, in pipeline order. */
export function documentJobs(deps: DocumentJobsDeps): Record<DocumentStage, StreamJob[]> {
  return {
    docproc: [docprocJob(deps)],
    embedding: [embeddingJob(deps)],
    analytics: [analyticsJob(deps)],
    sink: sinkJobs(deps),
  };
}
