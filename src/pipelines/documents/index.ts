/**
 * Pipeline `documents` (seed 004): upload API → documents.raw → chunks.processed →
 * embeddings.ready → 1-minute windows → analytics.flink; hourly-partitioned lake sink; daily report;
 * RAG over the uploaded documents.
 *
 *   POST /upload ──► originals/documents/<company>/<id>/<file> (lake storage) + documents.raw
 *   documents.docproc      documents.raw → extract + chunk → chunks.processed   (bad docs → documents.raw.dlq)
 *   documents.embedding    chunks.processed → batched embeddings → embeddings.ready + retrieval index
 *   documents.analytics    embeddings.ready → keyBy company_id, 1-min tumbling event-time windows,
 *                          5 s watermark → analytics.flink  (late → documents.analytics.late)
 *   documents.sink.*       the three topics → bronze.{documents_raw,chunks_processed,embeddings_ready}
 *                          year=/month=/day=/hour= by record time, flush.size 1000, rotate 10 min
 *   documents.daily_chunk_count   bronze.embeddings_ready → gold.daily_chunk_count (daily, 00:30 UTC)
 *   POST /ask              question → answer + citations from one company's chunks (seed path);
 *                          POST /api/documents/ask {question, filters, k} is the platform's ask route
 *
 * Every stage can run in its own process (`tributary worker documents --stage …`) or all in one
 * (`tributary up`, `tributary run documents --once`).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { limits, TributaryError, type TributaryConfig } from '../../core/index.js';
import type { SourceDeclaration } from '../../connectors/index.js';
import type { Lake } from '../../lake/index.js';
import type { Log } from '../../log/index.js';
import {
  DocumentExtractor,
  createEmbedder,
  llmConfigOf,
  documentTypeOfName,
  type DocumentBudget,
} from '../../ml/index.js';
import {
  registerAskRoute,
  type AskFunction,
  type DashboardPage,
  type LiveEvent,
  type PipelineModule,
} from '../../serve/index.js';
import type { BatchJob, StreamJob } from '../../stream/index.js';
import type { PipelineDefinition, PipelineServices } from '../types.js';
import { DocumentIndex, documentIndexDir } from './index-store.js';
import { ensureDocumentTopics, ingestDocument } from './ingest.js';
import { documentJobs, documentStages, type DocumentStage } from './jobs.js';
import { topics, type WindowCount } from './payloads.js';
import {
  dailyReportJobName,
  dailyReportSchedule,
  dailyReportTable,
  daysWithData,
  runDailyReport,
  yesterdayUtc,
} from './report.js';
import { registerDocumentRoutes } from './routes.js';
import { isolatedExtractAndChunk } from './stages.js';
import { documentTopics, topicRecordCount } from './stats.js';

export const pipelineName = 'documents';
/** SSE event with each final window result `{window_start, window_end, company_id, chunk_count}` (tenant = company). */
export const windowEventType = 'window.documents.chunks_per_minute';

/** What the stages share in one process: the retrieval index (so /ask sees new chunks at once). */
export interface DocumentsRuntime {
  index: DocumentIndex;
  /** docproc's worker threads (extraction + chunking off the event loop, within budget). */
  extractor: DocumentExtractor;
  jobs: Record<DocumentStage, StreamJob[]>;
  report: BatchJob;
}

export interface DocumentsRuntimeOptions {
  config: TributaryConfig;
  log: Log;
  lake: Lake;
  publish?: ((event: LiveEvent) => void) | undefined;
  /** Chunks per embedder call. Default `documentLimits.embedBatchSizeMax` (64). */
  embedBatchSizeMax?: number;
  /** Wall time between checkpoints of unbounded runs. Default the engine's (10 s). */
  checkpointIntervalMs?: number;
}

/** The per-document extraction budget from the configuration (`document*Max` keys). */
export function documentBudgetOf(config: TributaryConfig): DocumentBudget {
  return {
    cpuMsMax: config.documentCpuMsMax,
    heapMbMax: config.documentHeapMbMax,
    pagesMax: config.documentPagesMax,
    zipEntriesMax: config.documentZipEntriesMax,
    inflatedBytesMax: config.documentInflatedBytesMax,
    charsMax: config.documentCharsMax,
    outputBytesMax: config.documentOutputBytesMax,
  };
}

/** The daily report as a batch job: scheduled for yesterday; a manual run without a date takes the newest day with data. */
export function dailyReportJob(lake: Lake): BatchJob {
  return {
    name: dailyReportJobName,
    description:
      'Chunks per company and document for one UTC day: bronze.embeddings_ready → gold.daily_chunk_count',
    inputs: [`bronze.embeddings_ready`],
    outputs: [dailyReportTable],
    schedule: dailyReportSchedule,
    partitionFor: (atMs) => yesterdayUtc(atMs),
    async run(ctx) {
      const date = ctx.partition ?? (await daysWithData(lake)).at(-1);
      const result = await runDailyReport(lake, {
        ...(date === undefined ? {} : { date }),
        commitId: ctx.commitId,
      });
      return { rowsOut: result.rows };
    },
  };
}

/** Builds the pipeline's jobs and shared index over opened services. */
export function createDocumentsRuntime(options: DocumentsRuntimeOptions): DocumentsRuntime {
  const embedder = createEmbedder(options.config);
  const index = new DocumentIndex({
    dir: documentIndexDir(options.config.dataDir),
    embedder,
    llm: llmConfigOf(options.config),
  });
  const publish = options.publish;
  const extractor = new DocumentExtractor({ budget: documentBudgetOf(options.config) });
  const jobs = documentJobs({
    log: options.log,
    storage: options.lake.storage,
    extractAndChunk: isolatedExtractAndChunk(extractor),
    embedder,
    index,
    bronzeTable: (name) => options.lake.table('bronze', name),
    ...(options.embedBatchSizeMax ? { embedBatchSizeMax: options.embedBatchSizeMax } : {}),
    ...(options.checkpointIntervalMs ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
    ...(publish
      ? {
          onWindow: (result: WindowCount) =>
            publish({ type: windowEventType, data: result, tenant: result.company_id }),
        }
      : {}),
  });
  return { index, extractor, jobs, report: dailyReportJob(options.lake) };
}

/** One runtime per services object: `jobs()` and `serve()` of one process share the index. */
const runtimes = new WeakMap<PipelineServices, DocumentsRuntime>();
function runtimeOf(services: PipelineServices): DocumentsRuntime {
  let runtime = runtimes.get(services);
  if (runtime === undefined) {
    runtime = createDocumentsRuntime({
      config: services.config,
      log: services.log,
      lake: services.lake,
      publish: services.publish,
    });
    runtimes.set(services, runtime);
  }
  return runtime;
}

/** Every stream job in pipeline order. */
export function allStreamJobs(
  jobs: Record<DocumentStage, StreamJob[]>,
  stages: readonly DocumentStage[] = documentStages,
): StreamJob[] {
  return documentStages.filter((stage) => stages.includes(stage)).flatMap((stage) => jobs[stage]);
}

/** The dashboard page: uploads over time, live chunks per company per minute, DLQ and late counts. */
export const documentsPage: DashboardPage = {
  id: pipelineName,
  title: 'Documents',
  description:
    'Uploads → chunks → embeddings → 1-minute chunk counts per company; ask questions below (or with POST /ask).',
  tiles: [
    {
      id: 'uploads',
      label: 'Documents uploaded',
      source: { route: '/api/documents/counters', field: 'uploads' },
      format: 'integer',
    },
    {
      id: 'embeddings',
      label: 'Chunks embedded',
      source: { route: '/api/documents/counters', field: 'embeddings' },
      format: 'integer',
    },
    {
      id: 'dlq',
      label: 'Dead-lettered documents',
      source: { route: '/api/documents/counters', field: 'dlq' },
      format: 'integer',
    },
    {
      id: 'late',
      label: 'Late chunks (side output)',
      source: { route: '/api/documents/counters', field: 'late' },
      format: 'integer',
    },
    {
      id: 'last-window',
      label: 'Chunks in the last window',
      source: { event: windowEventType, eventField: 'chunk_count' },
      format: 'integer',
    },
  ],
  charts: [
    {
      id: 'uploads-per-minute',
      title: 'Uploads per minute',
      kind: 'line',
      route: '/api/documents/uploads?minutes=180',
      rowsField: 'rows',
      x: 'minute',
      y: 'uploads',
      format: 'integer',
    },
    {
      id: 'chunks-per-minute',
      title: 'Chunks per company per minute (live)',
      kind: 'bar',
      route: '/api/documents/chunks-per-minute?minutes=60',
      rowsField: 'rows',
      x: 'window_start',
      y: 'chunk_count',
      event: windowEventType,
      maxPoints: 120,
      format: 'integer',
    },
  ],
  tables: [
    {
      id: 'windows',
      title: 'Latest window results',
      route: '/api/documents/chunks-per-minute?minutes=60',
      columns: ['window_start', 'company_id', 'chunk_count'],
    },
    {
      id: 'daily',
      title: 'Daily chunk report',
      route: '/api/documents/daily-report?limit=20',
      columns: ['date', 'company_id', 'document_id', 'total_chunks'],
    },
  ],
  // The pipeline's ask route (registerAskRoute): the company is the index's tenant field, so a
  // tenant-bound key asks within its company and an unbound key names one; answers cite file,
  // page and chunk.
  ask: {
    id: 'documents',
    title: 'Ask the documents',
    route: '/api/documents/ask',
    placeholder: 'e.g. How long do refunds take?',
    what: 'documents',
    filters: [
      {
        field: 'company_id',
        label: 'Company',
        tenant: true,
        suggestions: { route: '/api/documents/chunks-per-minute?minutes=10080', field: 'company_id' },
      },
    ],
    citationFields: ['filename', 'page', 'chunk_id', 'document_id'],
  },
};

/** API routes and dashboard page of the pipeline. */
export function documentsModule(services: PipelineServices): PipelineModule {
  const runtime = runtimeOf(services);
  return {
    name: pipelineName,
    title: 'Documents',
    description: 'Document upload, processing, windowed analytics and RAG (seed 004)',
    tenantScoped: true,
    routes: (api) => {
      registerDocumentRoutes(api, {
        log: services.log,
        ingest: { log: services.log, storage: services.lake.storage },
        ask: (question, companyId, signal) => runtime.index.ask(question, companyId, 5, signal),
        query: services.query,
      });
      // The platform's ask route: POST /api/documents/ask {question, filters, k}, company_id mandatory.
      registerAskRoute(api, { pipeline: pipelineName, index: runtime.index.retrieval, what: 'documents' });
    },
    page: documentsPage,
  };
}

/**
 * The platform's `POST /api/ask` (the dashboard's question box) answered from this pipeline's
 * index, within the company the serving layer resolved (the key's tenant, or the body's company
 * for unbound keys); every query is confined to that one company.
 */
export function documentsAsk(services: PipelineServices): AskFunction {
  const runtime = runtimeOf(services);
  return (question, options) =>
    runtime.index.ask(question, options.company, options.topK ?? 5, options.signal);
}

/** Finds the ML layer's sample documents from the source tree or the compiled `dist/` tree. */
export function sampleDocumentsDir(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'src', 'ml', 'data', 'samples');
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
    dir = path.dirname(dir);
  }
  return null;
}

/** Demo companies the sample documents are spread over (tenant isolation is visible on the dashboard). */
export const demoCompanies = ['acme', 'globex'] as const;

/**
 * Seeds the sample documents on a fresh data dir: each sample is uploaded for a demo company
 * (alternating), so the first `tributary up` shows uploads, windows and answerable questions.
 * Does nothing when `documents.raw` already holds records.
 */
export async function seedDocuments(
  log: Log,
  lake: Lake,
  progress?: (message: string) => void,
): Promise<number> {
  await ensureDocumentTopics(log);
  if ((await topicRecordCount(log, topics.raw)) > 0) return 0;
  const dir = sampleDocumentsDir();
  if (dir === null) return 0;
  const files = readdirSync(dir)
    .filter((name) => documentTypeOfName(name) !== undefined)
    .sort();
  let seeded = 0;
  for (const [i, name] of files.entries()) {
    const company = demoCompanies[i % demoCompanies.length];
    await ingestDocument(
      { log, storage: lake.storage },
      { companyId: company, filename: name, bytes: await readFile(path.join(dir, name)) },
    );
    seeded++;
    progress?.(`documents: uploaded ${name} for ${company}`);
  }
  return seeded;
}

/** The documents drop folder of a data dir: `<dataDir>/inbox/documents`. */
export function documentsInboxDir(dataDir: string): string {
  return path.join(dataDir, 'inbox', 'documents');
}

/**
 * The drop folder as a declared spool source: `<company>__<file name>` (e.g.
 * `acme__refund-policy.pdf`) is uploaded for that company exactly as `POST /upload` would, then
 * moved to `completed/`; a file without a company, of a kind the pipeline does not read, empty or
 * too large goes to `failed/` with a `.reason`, and the folder carries on.
 */
export function documentsInboxSource(services: PipelineServices): SourceDeclaration {
  const storage = services.lake.storage;
  return {
    name: 'inbox',
    kind: 'spool',
    options: { dir: documentsInboxDir(services.config.dataDir), topic: topics.raw, onComplete: 'move' },
    async deliverFile(file) {
      const at = file.name.indexOf(inboxCompanySeparator);
      if (at <= 0)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${file.name}: name a dropped document <company>${inboxCompanySeparator}<file name>, e.g. acme${inboxCompanySeparator}refund-policy.pdf`,
        );
      // Refused before reading, so an oversized drop never sits in memory.
      if (file.sizeBytes > limits.uploadBytesMax)
        throw new TributaryError(
          'PAYLOAD_TOO_LARGE',
          `${file.name} is ${file.sizeBytes} bytes; the limit is ${limits.uploadBytesMax}`,
        );
      await ingestDocument(
        { log: services.log, storage },
        {
          companyId: file.name.slice(0, at),
          filename: file.name.slice(at + inboxCompanySeparator.length),
          bytes: await readFile(file.path),
          metadata: { source: 'inbox', inbox_file_id: file.fileId },
        },
      );
      return 1;
    },
  };
}

/** Between company and file name in a dropped document's name. */
export const inboxCompanySeparator = '__';

/** The pipeline, as the platform registers it (see ../types.ts for the wiring). */
export const documentsPipeline: PipelineDefinition = {
  name: pipelineName,
  title: 'Documents',
  description:
    'Upload API → documents.raw → chunks → embeddings → 1-min windows, lake sink, daily report, RAG',
  // Written only by /upload and the stages (a forged raw record could relabel a document's
  // company, a forged chunk be cited); analytics and late records come from the engine.
  internalTopics: [...documentTopics],
  async jobs(services) {
    await ensureDocumentTopics(services.log);
    const runtime = runtimeOf(services);
    return {
      stream: allStreamJobs(runtime.jobs),
      batch: [runtime.report],
      close: async () => {
        await runtime.extractor.close();
        await runtime.index.save();
      },
    };
  },
  // The daily report covers yesterday: it runs on its schedule, not at start (a fresh data dir has
  // no yesterday, and a missing day is an error by design).
  batchOnStart: false,
  serve: documentsModule,
  sources: (services) => [documentsInboxSource(services)],
  async seedDemo(services, progress) {
    await seedDocuments(services.log, services.lake, progress);
  },
};

export {
  topics,
  windowCountPayload,
  type RawDocument,
  type ChunkRecord,
  type EmbeddingRecord,
  type WindowCount,
} from './payloads.js';
export {
  ingestDocument,
  ensureDocumentTopics,
  originalKey,
  originalPath,
  type IngestDeps,
  type IngestRequest,
  type IngestResult,
} from './ingest.js';
export {
  createDocumentRoutes,
  registerDocumentRoutes,
  handleUpload,
  handleAsk,
  type CallerIdentity,
  type DocumentRoutesOptions,
} from './routes.js';
export {
  documentJobs,
  docprocJob,
  embeddingJob,
  analyticsJob,
  sinkJobs,
  documentStages,
  bronzeTables,
  lakeSinkSettings,
  type DocumentStage,
  type DocumentJobsDeps,
} from './jobs.js';
export { runStagesOnce, startStages, stopStages } from './run.js';
export {
  runDailyReport,
  daysWithData,
  yesterdayUtc,
  dailyReportTable,
  dailyReportJobName,
  type DailyReportResult,
} from './report.js';
export { DocumentIndex, documentIndexDir, documentIndexRecord, documentIndexSchema } from './index-store.js';
export { analyticsJobName, analyticsLateTopic } from './stats.js';
