import path from 'node:path';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { loadConfig } from '../src/core/index.js';
import { openLakeFromConfig } from '../src/lake/index.js';
import { openLog } from '../src/log/index.js';
import { createEmbedder } from '../src/ml/index.js';
import {
  DocumentIndex,
  createDocumentsRuntime,
  documentIndexDir,
  embeddingJob,
  ensureDocumentTopics,
  ingestDocument,
  startStages,
  stopStages,
  topics,
} from '../src/pipelines/documents/index.js';
import { mlExtractAndChunk } from '../src/pipelines/documents/ml.js';
import type { IndexedChunk } from '../src/pipelines/documents/stages.js';
import { runJob } from '../src/stream/index.js';
import { percentile } from './stats.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

const words = (
  'refund policy invoice shipping warranty contract renewal customer support onboarding security audit ' +
  'quarterly revenue forecast budget travel expense approval manager employee handbook vacation benefits ' +
  'incident response backup retention privacy data processing agreement service level availability'
).split(' ');

/** Deterministic prose: `count` sentences built from a fixed vocabulary. */
function prose(seed: number, count: number): string[] {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state;
  };
  return Array.from({ length: count }, () => {
    const length = 8 + (next() % 10);
    const sentence = Array.from({ length }, () => words[next() % words.length]).join(' ');
    return `${sentence[0].toUpperCase()}${sentence.slice(1)} ${next() % 90} days.`;
  });
}

/** A 10-page PDF, ~25 lines of text per page. */
async function tenPagePdf(seed: number): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (let p = 0; p < 10; p++) {
    const page = pdf.addPage([595, 842]);
    let y = 800;
    for (const line of prose(seed * 100 + p, 25)) {
      page.drawText(line.slice(0, 95), { x: 40, y, size: 10, font });
      y -= 14;
    }
  }
  return pdf.save();
}

/**
 * Upload → searchable: 10-page PDFs uploaded at a steady rate into a running pipeline (embedded
 * log, local lake, all stages in this process, offline embedder); a document is searchable when
 * all its chunks are in the retrieval index. Baseline: extraction + chunking + embedding of the
 * same document called directly in-process (p95), i.e. the work without the pipeline around it.
 */
async function ingestToSearchable(context: BenchContext): Promise<BenchResult> {
  const documentsCount = 20;
  const intervalMs = 500;
  const config = loadConfig({
    env: {},
    dotenv: false,
    overrides: { dataDir: path.join(context.dir, 'data') },
  });
  const log = await openLog(config);
  const lake = await openLakeFromConfig(config);
  const docs = await Promise.all(Array.from({ length: documentsCount }, (_, i) => tenPagePdf(i + 1)));

  // Baseline: the same work called directly.
  const extract = mlExtractAndChunk();
  const embedder = createEmbedder(config);
  const chunkCounts: number[] = [];
  const direct: number[] = [];
  // Warm-up (PDF parser load, JIT) so the baseline measures steady-state work, as the pipeline does.
  for (const bytes of docs.slice(0, 3))
    await embedder.embed(
      (await extract({ documentId: 'warm-up', filename: 'warm-up.pdf', bytes })).map((c) => c.text),
    );
  for (const [i, bytes] of docs.entries()) {
    const started = performance.now();
    const chunks = await extract({ documentId: `direct-${i}`, filename: `doc-${i}.pdf`, bytes });
    await embedder.embed(chunks.map((c) => c.text));
    direct.push(performance.now() - started);
    chunkCounts.push(chunks.length);
  }

  await ensureDocumentTopics(log);
  const runtime = createDocumentsRuntime({ config, log, lake });
  const pending = new Map<string, { startedMs: number; remaining: number }>();
  const latencies: number[] = [];
  let allSearchable: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allSearchable = resolve));
  const upsert = runtime.index.upsert.bind(runtime.index);
  runtime.index.upsert = async (chunks: IndexedChunk[]) => {
    await upsert(chunks);
    const now = performance.now();
    for (const chunk of chunks) {
      const entry = pending.get(chunk.document_id);
      if (entry === undefined) continue;
      entry.remaining--;
      if (entry.remaining === 0) {
        latencies.push(now - entry.startedMs);
        pending.delete(chunk.document_id);
        if (latencies.length === documentsCount) allSearchable();
      }
    }
  };
  const controller = new AbortController();
  const handles = startStages(runtime.jobs, { dataDir: config.dataDir, signal: controller.signal });
  try {
    const startedAt = performance.now();
    for (const [i, bytes] of docs.entries()) {
      const due = startedAt + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const uploadStarted = performance.now();
      const result = await ingestDocument(
        { log, storage: lake.storage },
        { companyId: i % 2 === 0 ? 'acme' : 'globex', filename: `doc-${i}.pdf`, bytes },
      );
      pending.set(result.document_id, { startedMs: uploadStarted, remaining: chunkCounts[i] });
    }
    const timeout = setTimeout(() => allSearchable(), 60_000);
    await done;
    clearTimeout(timeout);
  } finally {
    controller.abort();
    await stopStages(handles);
    await lake.close();
    await log.close();
  }
  if (latencies.length < documentsCount)
    throw new Error(`only ${latencies.length} of ${documentsCount} documents became searchable within 60 s`);
  const p95 = percentile(latencies, 0.95);
  const baseline = percentile(direct, 0.95);
  context.progress(
    `p50 ${percentile(latencies, 0.5).toFixed(0)} ms, p95 ${p95.toFixed(0)} ms; direct p95 ${baseline.toFixed(0)} ms; ${chunkCounts[0]} chunks per document`,
  );
  return {
    value: p95,
    unit: 'ms',
    baseline,
    baseline_name: 'extract+chunk+embed in-process p95',
    ratio: p95 / baseline,
    goal: '<= 2,000 ms',
    p50_ms: percentile(latencies, 0.5),
    documents: documentsCount,
    upload_interval_ms: intervalMs,
    chunks_per_document: chunkCounts[0],
  };
}

/**
 * Chunks/s through the embedding stage (decode, batched embedding with bounded concurrency, index
 * upsert, `embeddings.ready` append, checkpoint), bounded run over a pre-filled `chunks.processed`.
 * Baseline: the same embedder called directly on the same texts in batches of 64.
 */
async function chunksPerSecond(context: BenchContext): Promise<BenchResult> {
  const chunkCount = 20_000;
  const config = loadConfig({
    env: {},
    dotenv: false,
    overrides: { dataDir: path.join(context.dir, 'data') },
  });
  const log = await openLog(config);
  const texts = Array.from({ length: chunkCount }, (_, i) => prose(i + 7, 6).join(' '));
  const embedder = createEmbedder(config);

  let started = performance.now();
  for (let i = 0; i < texts.length; i += 64) await embedder.embed(texts.slice(i, i + 64));
  const baseline = chunkCount / ((performance.now() - started) / 1000);

  await log.ensureTopic(topics.chunks, { partitions: 1 });
  for (let i = 0; i < texts.length; i += 1_000) {
    await log.append(
      texts.slice(i, i + 1_000).map((text, j) => ({
        topic: topics.chunks,
        key: `doc-${Math.floor((i + j) / 40)}`,
        value: JSON.stringify({
          chunk_id: `chunk-${i + j}`,
          document_id: `doc-${Math.floor((i + j) / 40)}`,
          company_id: (i + j) % 2 ? 'acme' : 'globex',
          text,
          page: 1,
        }),
      })),
    );
  }
  const index = new DocumentIndex({ dir: documentIndexDir(config.dataDir), embedder });
  const job = embeddingJob({
    log,
    storage: { root: '', get: () => Promise.reject(new Error('unused')), list: () => Promise.resolve([]) },
    extractAndChunk: () => Promise.resolve([]),
    embedder,
    index,
    bronzeTable: () => {
      throw new Error('unused');
    },
  });
  started = performance.now();
  const status = await runJob(job, { once: true, dataDir: config.dataDir });
  const value = chunkCount / ((performance.now() - started) / 1000);
  await log.close();
  if (status.counters.outputs !== chunkCount)
    throw new Error(`embedding stage wrote ${status.counters.outputs} of ${chunkCount} chunks`);
  context.progress(
    `${value.toFixed(0)} chunks/s through the stage, ${baseline.toFixed(0)} chunks/s embedder alone`,
  );
  return {
    value,
    unit: 'chunks/s',
    baseline,
    baseline_name: 'embedder called directly (batches of 64)',
    ratio: value / baseline,
    chunks: chunkCount,
  };
}

export const documentsBenchmarks: Benchmark[] = [
  {
    name: 'documents.ingest_to_searchable_p95_ms',
    description:
      '10-page PDFs uploaded every 500 ms → all chunks in the retrieval index (p95), offline embedder',
    run: ingestToSearchable,
  },
  {
    name: 'documents.chunks_per_s',
    description: 'chunks/s through the embedding stage (offline embedder, index upserts, embeddings.ready)',
    run: chunksPerSecond,
  },
];
