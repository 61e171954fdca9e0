import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { TributaryError, dataDirPaths, resolveInside, systemClock, type Clock } from '../../core/index.js';
import type { Embedder } from '../embed/embedder.js';
import { metadataFieldPattern, type Metadata, type MetadataFilter } from '../index/filter.js';
import { HybridIndex, type IndexRecord, type IndexSchema } from '../index/hybrid.js';
import { ask, type Answer, type LlmConfig } from '../rag/ask.js';
import { chunkDocument, type Chunk, type ChunkOptions } from '../text/chunk.js';

/**
 * Where a pipeline keeps its retrieval index: `<dataDir>/index/<pipeline>/` (what
 * `tributary ask --pipeline <pipeline>` opens). The name may not climb out of `index/`.
 */
export function retrievalIndexDir(dataDir: string, pipeline: string): string {
  return resolveInside(dataDirPaths(dataDir).index, pipeline);
}

/** How an index of document chunks cites: `chunk_id`, `document_id`, `filename`, `page`. */
export const chunkCitations = {
  citationId: 'chunk_id',
  citationFields: ['document_id', 'filename', 'page'],
} as const satisfies IndexSchema;

/**
 * The index record of one chunk of `chunkDocument`: id the chunk id, metadata `document_id`,
 * `filename`, `page` plus `metadata` (e.g. the tenant).
 */
export function chunkRecord(chunk: Chunk, metadata: Metadata = {}): IndexRecord {
  return {
    id: chunk.chunkId,
    text: chunk.text,
    metadata: { document_id: chunk.documentId, filename: chunk.filename, page: chunk.page, ...metadata },
  };
}

/** Chunking of long record texts on upsert (the ML layer's chunker, sentence-aware with overlap). */
export interface RecordChunking extends ChunkOptions {
  /**
   * Metadata field each chunk carries the id of the record it came from, so a record sent again
   * replaces all of its old chunks (also when it now has fewer). Default `source_id`.
   */
  sourceField?: string;
}

export interface RetrievalIndexOptions {
  dir: string;
  embedder: Embedder;
  /** Tenant field and citation shape, persisted with the index (see `IndexSchema`). */
  schema?: IndexSchema;
  /**
   * When set, a record whose text is longer than `maxChars` (default 1000) is split into chunks
   * with ids `<id>#<n>`; every chunk keeps the record's metadata plus `sourceField`.
   */
  chunk?: RecordChunking | undefined;
  /**
   * Records below which queries scan vectors exactly instead of keeping an HNSW graph. Default
   * 50,000: every upsert batch inserts into the graph (~2 ms per vector at 384 dimensions), which
   * would cap an embedding stage far below the embedder's speed, while an exact scan of 50,000
   * vectors stays within tens of milliseconds per question.
   */
  hnswThreshold?: number;
  /** Readers (API, CLI) in another process than the writing job reload at most this often. Default 1 s. */
  reloadCheckMs?: number;
  /** Opened only for reading (the CLI): writes are refused. */
  readOnly?: boolean;
  llm?: LlmConfig | undefined;
  clock?: Clock;
}

/** What a stream job's index sink needs: upsert by id (a replayed batch is harmless), then save. */
export interface IndexWriter<R = IndexRecord> {
  upsert(records: R[]): Promise<void>;
  save(): Promise<void>;
}

/** What an `ask` route or the CLI needs: the index's schema (its tenant field) and one answer. */
export interface IndexReader {
  schema(): Promise<IndexSchema>;
  ask(
    question: string,
    options?: {
      filters?: MetadataFilter;
      k?: number;
      onToken?: (text: string) => void;
      /** The asking request's signal: stops the embedding and chat requests when it aborts. */
      signal?: AbortSignal | undefined;
    },
  ): Promise<Answer>;
}

/**
 * A pipeline's retrieval index (the ML layer's hybrid vector + BM25 index) persisted under one
 * directory (`retrievalIndexDir`), shared by the job that feeds it and the readers that answer.
 *
 * The feeding job writes (`upsert`, then `save` at each checkpoint, see `indexSink`); the API's
 * ask route and the CLI read. When they run in different processes, a reader reopens the saved
 * index when its manifest changed. With a tenant field in the schema, every question and every
 * record is confined to one tenant.
 *
 * @example
 * const reviews = new RetrievalIndex({ dir: retrievalIndexDir(dataDir, 'reviews'), embedder, chunk: {} });
 * await reviews.upsert([{ id: 'r1', text: 'The battery died after a week.', metadata: { product: 'phone-x', stars: 1 } }]);
 * await reviews.save();
 * const answer = await reviews.ask('How long does the battery last?', { filters: { product: 'phone-x' } });
 */
export class RetrievalIndex implements IndexWriter, IndexReader {
  readonly dir: string;
  readonly #embedder: Embedder;
  readonly #schema: IndexSchema;
  readonly #chunk: Required<RecordChunking> | undefined;
  readonly #hnswThreshold: number;
  readonly #reloadCheckMs: number;
  readonly #readOnly: boolean;
  readonly #llm: LlmConfig | undefined;
  readonly #clock: Clock;
  #index: HybridIndex | undefined;
  #loadedManifestMs = -1;
  #checkedAtMs = -Infinity;
  #dirty = false;
  #saving: Promise<unknown> = Promise.resolve();
  /** True when this instance has written (then it is the source of truth and never reloads). */
  #writer = false;

  constructor(options: RetrievalIndexOptions) {
    this.dir = options.dir;
    this.#embedder = options.embedder;
    this.#schema = options.schema ?? {};
    if (options.chunk !== undefined) {
      const sourceField = options.chunk.sourceField ?? 'source_id';
      if (!metadataFieldPattern.test(sourceField))
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `chunk.sourceField ${JSON.stringify(sourceField)} is invalid`,
        );
      this.#chunk = {
        maxChars: options.chunk.maxChars ?? 1000,
        overlapChars: options.chunk.overlapChars ?? 150,
        sourceField,
      };
    }
    this.#hnswThreshold = options.hnswThreshold ?? 50_000;
    this.#reloadCheckMs = options.reloadCheckMs ?? 1_000;
    this.#readOnly = options.readOnly ?? false;
    this.#llm = options.llm;
    this.#clock = options.clock ?? systemClock;
  }

  /** The schema in force: the saved one for a reader that declared none (the CLI). */
  async schema(): Promise<IndexSchema> {
    return (await this.#current()).schema;
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
    const options = { embedder: this.#embedder, hnswThreshold: this.#hnswThreshold };
    if (manifestMs < 0 && this.#readOnly) {
      // A reader that must not write anything: an absent index is an error naming the directory.
      await HybridIndex.open(this.dir, { ...options, readOnly: true });
    }
    this.#index =
      manifestMs < 0
        ? await HybridIndex.create({ ...options, dir: this.dir, schema: this.#schema })
        : await HybridIndex.open(this.dir, {
            ...options,
            readOnly: this.#readOnly,
            // A reader without a declared schema (the CLI) takes the saved one.
            ...(Object.keys(this.#schema).length > 0 ? { schema: this.#schema } : {}),
          });
    this.#loadedManifestMs = manifestMs;
    return this.#index;
  }

  /** The records to store for one input record: itself, or its chunks when chunking is on. */
  #expand(record: IndexRecord): IndexRecord[] {
    const chunking = this.#chunk;
    if (chunking === undefined) return [record];
    const metadata = { ...record.metadata, [chunking.sourceField]: record.id };
    if (record.text.length <= chunking.maxChars) return [{ ...record, metadata }];
    const chunks = chunkDocument(
      { documentId: record.id, filename: '', format: 'text', pages: [{ page: 1, text: record.text }] },
      chunking,
    );
    return chunks.map((chunk) => ({ id: `${record.id}#${chunk.index}`, text: chunk.text, metadata }));
  }

  /**
   * Adds or replaces records by id (a replayed batch is harmless). With chunking on, a record's
   * chunks from an earlier version that the new one no longer has are removed after the new ones
   * are in (so a batch that fails validation or embedding changes nothing), and a record's own
   * vector is ignored when it is split.
   */
  async upsert(records: IndexRecord[]): Promise<void> {
    if (records.length === 0) return;
    const index = await this.#current();
    this.#writer = true;
    const expanded = records.map((record) => this.#expand(record));
    await index.add(expanded.flat());
    this.#dirty = true;
    const chunking = this.#chunk;
    if (chunking === undefined) return;
    const tenantField = index.schema.tenantField;
    for (const [i, record] of records.entries()) {
      // The tenant condition keeps one tenant's record id from removing another tenant's chunks.
      const tenant = tenantField === undefined ? {} : { [tenantField]: record.metadata[tenantField] };
      index.deleteMatching(
        { [chunking.sourceField]: record.id, ...tenant },
        new Set(expanded[i].map((chunk) => chunk.id)),
      );
    }
  }

  /** Deletes the records a filter matches (within one tenant where the index has tenants). */
  async delete(filters: MetadataFilter): Promise<number> {
    const index = await this.#current();
    this.#writer = true;
    const deleted = index.deleteMatching(filters);
    if (deleted > 0) this.#dirty = true;
    return deleted;
  }

  /**
   * Persists the index if it changed since the last save. A call waits for a save in flight
   * (another job's checkpoint), so when it returns everything upserted before it is on disk.
   */
  save(): Promise<void> {
    const run = this.#saving.then(async () => {
      if (!this.#dirty || this.#index === undefined) return;
      this.#dirty = false;
      try {
        await this.#index.save(this.dir);
      } catch (error) {
        this.#dirty = true;
        throw error;
      }
      this.#loadedManifestMs = this.#manifestMs();
    });
    this.#saving = run.catch(() => undefined);
    return run;
  }

  /** Records in the index (all tenants). */
  async count(): Promise<number> {
    return (await this.#current()).count;
  }

  /**
   * The RAG answer from the passages meeting `filters` (which must name one tenant when the
   * index has tenants), with citations shaped by the schema; "not found" when nothing relevant.
   */
  async ask(
    question: string,
    options: {
      filters?: MetadataFilter;
      k?: number;
      onToken?: (text: string) => void;
      signal?: AbortSignal | undefined;
    } = {},
  ): Promise<Answer> {
    return ask(await this.#current(), question, {
      filters: options.filters,
      k: options.k ?? 5,
      signal: options.signal,
      ...(this.#llm ? { llm: this.#llm } : {}),
      ...(options.onToken ? { onToken: options.onToken } : {}),
    });
  }
}
