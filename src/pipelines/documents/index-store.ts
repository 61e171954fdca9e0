import type { Clock } from '../../core/index.js';
import {
  RetrievalIndex,
  chunkCitations,
  retrievalIndexDir,
  type Answer,
  type Embedder,
  type IndexRecord,
  type IndexSchema,
  type IndexWriter,
  type LlmConfig,
} from '../../ml/index.js';
import type { IndexedChunk } from './stages.js';

/** Where the documents pipeline keeps its retrieval index (what `tributary ask --pipeline documents` opens). */
export function documentIndexDir(dataDir: string): string {
  return retrievalIndexDir(dataDir, 'documents');
}

/**
 * The documents index: one tenant per question (`company_id`), citations naming document, file,
 * page and chunk — the seed's `/ask` answer shape.
 */
export const documentIndexSchema: IndexSchema = { tenantField: 'company_id', ...chunkCitations };

/** A chunk with its vector as the platform's retrieval index stores it. */
export function documentIndexRecord(chunk: IndexedChunk): IndexRecord {
  return {
    id: chunk.chunk_id,
    text: chunk.text,
    metadata: {
      company_id: chunk.company_id,
      document_id: chunk.document_id,
      filename: chunk.filename,
      page: chunk.page,
      date: new Date(chunk.timestamp).toISOString(),
    },
    vector: Float32Array.from(chunk.vector),
  };
}

export interface DocumentIndexOptions {
  dir: string;
  embedder: Embedder;
  /** Chunks below which queries scan vectors exactly (see `RetrievalIndexOptions.hnswThreshold`). */
  hnswThreshold?: number;
  /** Readers (API, CLI) in another process than the embedding stage reload at most this often. Default 1 s. */
  reloadCheckMs?: number;
  llm?: LlmConfig | undefined;
  clock?: Clock;
}

/**
 * The pipeline's retrieval index: the platform's `RetrievalIndex` under `index/documents`, fed
 * with embedded chunks by the embedding stage (through the ML layer's `indexSink`) and asked per
 * company. Every query is confined to one company by the schema's tenant field.
 */
export class DocumentIndex implements IndexWriter<IndexedChunk> {
  readonly dir: string;
  /** The platform index, as the ask route factory and the CLI use it. */
  readonly retrieval: RetrievalIndex;

  constructor(options: DocumentIndexOptions) {
    this.dir = options.dir;
    this.retrieval = new RetrievalIndex({
      dir: options.dir,
      embedder: options.embedder,
      schema: documentIndexSchema,
      ...(options.hnswThreshold === undefined ? {} : { hnswThreshold: options.hnswThreshold }),
      ...(options.reloadCheckMs === undefined ? {} : { reloadCheckMs: options.reloadCheckMs }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      llm: options.llm,
    });
  }

  /** Adds or replaces chunks by chunk_id, so a replayed batch is harmless. */
  upsert(chunks: IndexedChunk[]): Promise<void> {
    return this.retrieval.upsert(chunks.map(documentIndexRecord));
  }

  /** Persists the index if it changed since the last save. */
  save(): Promise<void> {
    return this.retrieval.save();
  }

  /** Chunks in the index (all companies). */
  count(): Promise<number> {
    return this.retrieval.count();
  }

  /** RAG answer with citations (document, page, chunk) from `companyId`'s chunks only. */
  ask(question: string, companyId: string, k = 5, signal?: AbortSignal): Promise<Answer> {
    return this.retrieval.ask(question, { filters: { company_id: companyId }, k, signal });
  }
}
