import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { dataDirPaths, systemClock, type Clock } from '../../core/index.js';
import { HybridIndex, ask, type Answer, type Embedder, type LlmConfig } from '../../ml/index.js';
import type { Sink } from '../../stream/index.js';
import type { DocumentIndexWriter, IndexedChunk } from './stages.js';

/** Where the documents pipeline keeps its retrieval index (what `tributary ask --pipeline documents` opens). */
export function documentIndexDir(dataDir: string): string {
  return path.join(dataDirPaths(dataDir).index, 'documents');
}

export interface DocumentIndexOptions {
  dir: string;
  embedder: Embedder;
  /**
   * Chunks below which queries scan vectors exactly instead of keeping an HNSW graph. Default
   * 50,000: every upsert batch inserts into the graph (~2 ms per vector at 384 dimensions), which
   * would cap the embedding stage far below the embedder's speed, while an exact scan of 50,000
   * vectors stays within tens of milliseconds per question.
   */
  hnswThreshold?: number;
  /** Readers (API, CLI) in another process than the embedding stage reload at most this often. Default 1 s. */
  reloadCheckMs?: number;
  llm?: LlmConfig | undefined;
  clock?: Clock;
}

/**
 * The pipeline's retrieval index (the ML layer's hybrid vector + BM25 index), persisted under
 * `dataDirPaths(dataDir).index/documents` in the ML layer's index format.
 *
 * The embedding stage writes (upsert, then `save` at each checkpoint, see `indexSink`); the API's
 * `POST /ask` reads. When they run in different processes (separate workers), the reader reopens
 * the saved index when its manifest changed. Every query is confined to one company.
 */
export class DocumentIndex implements DocumentIndexWriter {
  readonly dir: string;
  readonly #embedder: Embedder;
  readonly #hnswThreshold: number;
  readonly #reloadCheckMs: number;
  readonly #llm: LlmConfig | undefined;
  readonly #clock: Clock;
  #index: HybridIndex | undefined;
  #loadedManifestMs = -1;
  #checkedAtMs = -Infinity;
  #dirty = false;
  /** True when this instance has written (then it is the source of truth and never reloads). */
  #writer = false;

  constructor(options: DocumentIndexOptions) {
    this.dir = options.dir;
    this.#embedder = options.embedder;
    this.#hnswThreshold = options.hnswThreshold ?? 50_000;
    this.#reloadCheckMs = options.reloadCheckMs ?? 1_000;
    this.#llm = options.llm;
    this.#clock = options.clock ?? systemClock;
  }

  #manifestMs(): number {
    const file = path.join(this.dir, 'MANIFEST.json');
    return existsSync(file) ? statSync(file).mtimeMs : -1;
  }

  async #current(): Promise<HybridIndex> {
    const now = this.#clock.now();
    if (this.#index !== undefined && (this.#writer || now - this.#checkedAtMs < this.#reloadCheckMs))
      return this.#index;
    this.#checkedAtMs = now;
    const manifestMs = this.#manifestMs();
    if (this.#index !== undefined && manifestMs === this.#loadedManifestMs) return this.#index;
    this.#index =
      manifestMs < 0
        ? await HybridIndex.create({
            embedder: this.#embedder,
            dir: this.dir,
            hnswThreshold: this.#hnswThreshold,
          })
        : await HybridIndex.open(this.dir, { embedder: this.#embedder, hnswThreshold: this.#hnswThreshold });
    this.#loadedManifestMs = manifestMs;
    return this.#index;
  }

  async upsert(chunks: IndexedChunk[]): Promise<void> {
    if (chunks.length === 0) return;
    const index = await this.#current();
    this.#writer = true;
    await index.add(
      chunks.map((chunk) => ({
        chunkId: chunk.chunk_id,
        documentId: chunk.document_id,
        filename: chunk.filename,
        company: chunk.company_id,
        page: chunk.page,
        text: chunk.text,
        date: new Date(chunk.timestamp).toISOString(),
        vector: Float32Array.from(chunk.vector),
      })),
    );
    this.#dirty = true;
  }

  /** Persists the index if it changed since the last save. */
  async save(): Promise<void> {
    if (!this.#dirty || this.#index === undefined) return;
    this.#dirty = false;
    await this.#index.save(this.dir);
    this.#loadedManifestMs = this.#manifestMs();
  }

  /** Chunks in the index (all companies). */
  async count(): Promise<number> {
    return (await this.#current()).count;
  }

  /** RAG answer with citations (document, page, chunk) from `companyId`'s chunks only. */
  async ask(question: string, companyId: string, k = 5): Promise<Answer> {
    return ask(await this.#current(), question, {
      company: companyId,
      k,
      ...(this.#llm ? { llm: this.#llm } : {}),
    });
  }
}

/**
 * A stream-job sink that adds embedded chunks to the retrieval index: upserts after every input
 * batch (searchable at once in this process) and saves the index before each checkpoint is
 * recorded, so a restart from that checkpoint never finds the index behind the topic.
 */
export function indexSink<T>(
  index: DocumentIndexWriter & { save(): Promise<void> },
  toChunk: (value: T) => IndexedChunk,
): Sink<T> {
  let buffer: IndexedChunk[] = [];
  const flush = async () => {
    if (buffer.length === 0) return;
    const out = buffer;
    buffer = [];
    await index.upsert(out);
  };
  return {
    name: 'index:documents',
    async open() {},
    write(value) {
      buffer.push(toChunk(value));
    },
    flush,
    async preCommit() {
      await flush();
      await index.save();
      return null;
    },
    async commit() {},
    async close() {
      await flush();
      await index.save();
    },
  };
}
