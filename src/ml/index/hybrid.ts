import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TributaryError, writeFileAtomic } from '../../core/index.js';
import type { Embedder } from '../embed/embedder.js';
import { Bm25Index, bm25Terms, reciprocalRankFusion } from './bm25.js';
import { Hnsw, VectorStore, exactSearchIds, type ScoredId } from './hnsw.js';

/** One chunk as the index stores it. `company` is the tenant; every query is confined to one. */
export interface IndexRecord {
  chunkId: string;
  documentId: string;
  filename: string;
  company: string;
  page: number;
  text: string;
  product?: string | undefined;
  /** ISO date or timestamp (e.g. the document's date); compared as text, prefix-aware. */
  date?: string | undefined;
  /** L2-normalised embedding; computed with the index's embedder when absent. */
  vector?: Float32Array | undefined;
}

export interface SearchFilters {
  product?: string | undefined;
  documentId?: string | undefined;
  /** Inclusive bounds on `date`. */
  dateFrom?: string | undefined;
  dateTo?: string | undefined;
}

export interface SearchQuery extends SearchFilters {
  text: string;
  /** Required: the tenant whose chunks may be returned. */
  company: string;
  /** Results wanted (default 5). */
  k?: number;
}

/** A chunk as a search returns it: the stored record without its vector, with its scores. */
export interface SearchHit extends Omit<IndexRecord, 'vector'> {
  /** Reciprocal-rank-fusion score. */
  score: number;
  /** Cosine similarity of query and chunk embeddings. */
  vectorScore: number;
  /** BM25 score (0 when no query term occurs in the chunk). */
  lexicalScore: number;
}

export interface HybridIndexOptions {
  embedder: Embedder;
  /** Below this many vectors queries scan exactly; from it on an HNSW graph is kept. Default 5,000. */
  hnswThreshold?: number;
  /** When a query's filters leave at most this many candidates, they are scanned exactly. Default 4,000. */
  exactCandidatesMax?: number;
  /** HNSW search breadth. Default 96. */
  efSearch?: number;
}

interface StoredMeta {
  chunkId: string;
  documentId: string;
  filename: string;
  company: string;
  page: number;
  text: string;
  product?: string | undefined;
  date?: string | undefined;
  deleted: boolean;
}

const manifestName = 'MANIFEST.json';
const indexFormat = 'tributary-hybrid-index';
const indexFormatVersion = 1;

interface Manifest {
  format: typeof indexFormat;
  version: number;
  generation: number;
  embedder: string;
  dimensions: number;
  count: number;
  records: string;
  vectors: string;
  graph: string | null;
}

/** Throws unless `company` is a non-empty string: the tenant filter cannot be skipped. */
export function requireCompany(company: unknown): string {
  if (typeof company !== 'string' || company.trim() === '') {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      'a company (tenant) is required for every index query and write',
    );
  }
  return company;
}

/**
 * Hybrid retrieval index: exact or HNSW vector search plus BM25, fused with reciprocal rank
 * fusion. The tenant (`company`) filter is applied while candidates are generated in both
 * searches, never after a global top-k, so another tenant's chunk can neither be returned nor
 * crowd out this tenant's results.
 *
 * @example
 * const index = await HybridIndex.create({ embedder: new HashedEmbedder() });
 * await index.add([{ chunkId: 'c1', documentId: 'd1', filename: 'faq.md', company: 'acme', page: 1, text: 'Refunds take 5 days.' }]);
 * const hits = await index.search({ text: 'how long do refunds take', company: 'acme' });
 */
export class HybridIndex {
  readonly embedder: Embedder;
  readonly #options: Required<Omit<HybridIndexOptions, 'embedder'>>;
  #store: VectorStore | undefined;
  #graph: Hnsw | undefined;
  #bm25 = new Bm25Index();
  readonly #meta: StoredMeta[] = [];
  readonly #byChunk = new Map<string, number>();
  readonly #byCompany = new Map<string, number[]>();
  #generation = 0;
  #dir: string | undefined;
  #readOnly = false;

  private constructor(options: HybridIndexOptions) {
    this.embedder = options.embedder;
    this.#options = {
      hnswThreshold: options.hnswThreshold ?? 5_000,
      exactCandidatesMax: options.exactCandidatesMax ?? 4_000,
      efSearch: options.efSearch ?? 96,
    };
  }

  /** A new, empty index; `dir` (optional) is where `save()` writes. */
  static create(options: HybridIndexOptions & { dir?: string }): Promise<HybridIndex> {
    const index = new HybridIndex(options);
    index.#dir = options.dir;
    return Promise.resolve(index);
  }

  /** Rebuilds an index from records (e.g. chunk rows read back from the lake). */
  static async fromRecords(
    records: Iterable<IndexRecord>,
    options: HybridIndexOptions & { dir?: string },
  ): Promise<HybridIndex> {
    const index = await HybridIndex.create(options);
    await index.add([...records]);
    return index;
  }

  /** Number of live (not deleted) chunks. */
  get count(): number {
    return this.#byChunk.size;
  }

  get dimensions(): number {
    return this.#store?.dim ?? this.embedder.dimensions;
  }

  #assertWritable(): void {
    if (this.#readOnly) throw new TributaryError('FORBIDDEN', `index ${this.#dir} was opened read-only`);
  }

  /** Adds or replaces (by chunk id) records; missing vectors are embedded in one batch. */
  async add(records: readonly IndexRecord[]): Promise<void> {
    this.#assertWritable();
    if (records.length === 0) return;
    for (const [i, r] of records.entries()) {
      requireCompany(r.company);
      if (typeof r.chunkId !== 'string' || r.chunkId === '' || typeof r.text !== 'string') {
        throw new TributaryError('BAD_RECORD', `index record ${i} needs a chunkId and text`, {
          details: { record: i },
        });
      }
    }
    const missing = records.filter((r) => r.vector === undefined);
    const embedded = missing.length > 0 ? await this.embedder.embed(missing.map((r) => r.text)) : [];
    let e = 0;
    for (const record of records) {
      const vector = record.vector ?? embedded[e++];
      this.#store ??= new VectorStore(vector.length, 1024);
      const existing = this.#byChunk.get(record.chunkId);
      if (existing !== undefined) this.#deleteId(existing);
      const id = this.#store.add(vector);
      this.#meta[id] = {
        chunkId: record.chunkId,
        documentId: record.documentId,
        filename: record.filename,
        company: record.company,
        page: record.page,
        text: record.text,
        product: record.product,
        date: record.date,
        deleted: false,
      };
      this.#indexMeta(id);
    }
    this.#maintainGraph();
  }

  #indexMeta(id: number): void {
    const meta = this.#meta[id];
    if (meta.deleted) return;
    this.#byChunk.set(meta.chunkId, id);
    let ids = this.#byCompany.get(meta.company);
    if (!ids) {
      ids = [];
      this.#byCompany.set(meta.company, ids);
    }
    ids.push(id);
    this.#bm25.add(id, meta.text);
  }

  #maintainGraph(): void {
    const store = this.#store;
    if (!store) return;
    if (this.#graph) this.#graph.build();
    else if (store.size >= this.#options.hnswThreshold) {
      this.#graph = new Hnsw(store);
      this.#graph.build();
    }
  }

  #deleteId(id: number): void {
    const meta = this.#meta[id];
    if (meta.deleted) return;
    meta.deleted = true;
    this.#byChunk.delete(meta.chunkId);
    const ids = this.#byCompany.get(meta.company);
    if (ids) {
      const at = ids.indexOf(id);
      if (at >= 0) ids.splice(at, 1);
    }
    this.#bm25.delete(id);
  }

  /** Deletes chunks by id; returns how many existed. */
  deleteChunks(chunkIds: readonly string[]): number {
    this.#assertWritable();
    let n = 0;
    for (const chunkId of chunkIds) {
      const id = this.#byChunk.get(chunkId);
      if (id !== undefined) {
        this.#deleteId(id);
        n++;
      }
    }
    return n;
  }

  /** Deletes every chunk of one document of one company; returns how many. */
  deleteDocument(company: string, documentId: string): number {
    this.#assertWritable();
    requireCompany(company);
    const ids = [...(this.#byCompany.get(company) ?? [])].filter(
      (id) => this.#meta[id].documentId === documentId,
    );
    for (const id of ids) this.#deleteId(id);
    return ids.length;
  }

  #accept(query: SearchQuery): (id: number) => boolean {
    const { company, product, documentId, dateFrom, dateTo } = query;
    return (id) => {
      const m = this.#meta[id];
      if (m.deleted || m.company !== company) return false;
      if (product !== undefined && m.product !== product) return false;
      if (documentId !== undefined && m.documentId !== documentId) return false;
      if (dateFrom !== undefined && (m.date === undefined || m.date.slice(0, dateFrom.length) < dateFrom))
        return false;
      if (dateTo !== undefined && (m.date === undefined || m.date.slice(0, dateTo.length) > dateTo))
        return false;
      return true;
    };
  }

  /** Vector-only top-k within the query's tenant and filters. */
  vectorSearch(vector: Float32Array, query: SearchQuery, k: number): ScoredId[] {
    requireCompany(query.company);
    const store = this.#store;
    if (!store) return [];
    const accept = this.#accept(query);
    const companyIds = this.#byCompany.get(query.company) ?? [];
    if (!this.#graph || companyIds.length <= this.#options.exactCandidatesMax) {
      return exactSearchIds(store, vector, k, companyIds.filter(accept));
    }
    // Selective filters make the graph walk visit many rejected nodes; widen the beam with the
    // filter's selectivity so enough accepted nodes are found.
    const selectivity = companyIds.length / Math.max(1, store.size);
    const ef = Math.min(
      4096,
      Math.ceil(Math.max(this.#options.efSearch, k * 4) / Math.max(selectivity, 0.05)),
    );
    return this.#graph.search(vector, k, ef, accept);
  }

  /** Hybrid search: vector and BM25 candidates (3·k each) fused by reciprocal rank. */
  async search(query: SearchQuery): Promise<SearchHit[]> {
    requireCompany(query.company);
    const k = query.k ?? 5;
    if (this.count === 0) return [];
    const [vector] = await this.embedder.embed([query.text]);
    const pool = Math.max(20, k * 3);
    const vectorHits = this.vectorSearch(vector, query, pool);
    const lexicalHits = this.#bm25.search(query.text, pool, this.#accept(query));
    const vectorScore = new Map(vectorHits.map((h) => [h.id, h.score]));
    const lexicalScore = new Map(lexicalHits.map((h) => [h.id, h.score]));
    const store = this.#store!;
    return reciprocalRankFusion([vectorHits, lexicalHits])
      .slice(0, k)
      .map(({ id, score }) => {
        const m = this.#meta[id];
        let cosine = vectorScore.get(id);
        if (cosine === undefined) {
          cosine = 0;
          const row = store.get(id);
          for (let i = 0; i < row.length; i++) cosine += row[i] * vector[i];
        }
        return {
          chunkId: m.chunkId,
          documentId: m.documentId,
          filename: m.filename,
          company: m.company,
          page: m.page,
          text: m.text,
          product: m.product,
          date: m.date,
          score,
          vectorScore: cosine,
          lexicalScore: lexicalScore.get(id) ?? 0,
        };
      });
  }

  /** BM25 inverse document frequency of each content word of `text` (rarer words weigh more). */
  termWeights(text: string): Map<string, number> {
    return new Map(bm25Terms(text).map((t) => [t, this.#bm25.idf(t)]));
  }

  /** Live records (without vectors), e.g. to re-export or rebuild. */
  *records(): Generator<IndexRecord & { vector: Float32Array }> {
    for (const [id, m] of this.#meta.entries()) {
      if (m.deleted) continue;
      const { deleted: _deleted, ...rest } = m;
      yield { ...rest, vector: new Float32Array(this.#store!.get(id)) };
    }
  }

  /**
   * Persists the index under its directory. Layout (one generation at a time; a crash at any
   * point leaves the previous generation readable):
   *   MANIFEST.json        {format, version, generation, embedder, dimensions, count, records, vectors, graph}
   *   records-<gen>.jsonl  one JSON object per internal id, in id order:
   *                        {chunkId, documentId, filename, company, page, text, product?, date?, deleted}
   *   vectors-<gen>.f32    "TRBVEC01" | u32 LE dimensions | u32 LE count | count × dimensions × f32 LE
   *   hnsw-<gen>.bin       the HNSW graph (format documented on `Hnsw.encode`), when one exists
   * Data files are written atomically first, then the manifest is atomically replaced to point at
   * them, then generations older than the previous one are removed.
   */
  async save(dir = this.#dir): Promise<void> {
    this.#assertWritable();
    if (dir === undefined) throw new TributaryError('INVALID_ARGUMENT', 'HybridIndex.save needs a directory');
    if (os.endianness() !== 'LE')
      throw new TributaryError('INTERNAL', 'the index file format is little-endian; this platform is not');
    await mkdir(dir, { recursive: true });
    const generation = Math.max(this.#generation, await readGeneration(dir)) + 1;
    const names = {
      records: `records-${generation}.jsonl`,
      vectors: `vectors-${generation}.f32`,
      graph: this.#graph ? `hnsw-${generation}.bin` : null,
    };
    const lines = this.#meta.map((m) => JSON.stringify(m)).join('\n');
    await writeFileAtomic(path.join(dir, names.records), lines.length > 0 ? `${lines}\n` : '');
    const store = this.#store;
    const dim = store?.dim ?? this.embedder.dimensions;
    const count = store?.size ?? 0;
    const header = new Uint8Array(16);
    header.set(new TextEncoder().encode('TRBVEC01'), 0);
    new DataView(header.buffer).setUint32(8, dim, true);
    new DataView(header.buffer).setUint32(12, count, true);
    const body = store ? store.rawBytes() : new Uint8Array(0);
    const vectors = new Uint8Array(16 + body.length);
    vectors.set(header, 0);
    vectors.set(body, 16);
    await writeFileAtomic(path.join(dir, names.vectors), vectors);
    if (this.#graph && names.graph) await writeFileAtomic(path.join(dir, names.graph), this.#graph.encode());
    const manifest: Manifest = {
      format: indexFormat,
      version: indexFormatVersion,
      generation,
      embedder: this.embedder.name,
      dimensions: dim,
      count,
      ...names,
    };
    await writeFileAtomic(path.join(dir, manifestName), `${JSON.stringify(manifest, null, 2)}\n`);
    this.#generation = generation;
    this.#dir = dir;
    // The previous generation is kept one more round: a reader in another process that read the
    // old manifest a moment ago can still open the files it names.
    for (const file of await readdir(dir)) {
      const match = /^(records|vectors|hnsw)-(\d+)\./.exec(file);
      if (match && Number(match[2]) < generation - 1) await rm(path.join(dir, file), { force: true });
    }
  }

  /**
   * Opens a saved index. The embedder must be the one it was built with (checked by name), so
   * query vectors are comparable. `readOnly` refuses writes (the CLI's `ask`).
   */
  static async open(dir: string, options: HybridIndexOptions & { readOnly?: boolean }): Promise<HybridIndex> {
    const manifestPath = path.join(dir, manifestName);
    if (!existsSync(manifestPath)) {
      throw new TributaryError(
        'NOT_FOUND',
        `no index at ${dir} (missing ${manifestName}); ingest documents first`,
      );
    }
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    } catch (error) {
      throw new TributaryError('CORRUPT_DATA', `${manifestPath}: not JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (manifest.format !== indexFormat)
      throw new TributaryError('CORRUPT_DATA', `${manifestPath}: not a Tributary index manifest`);
    if (manifest.version > indexFormatVersion) {
      throw new TributaryError(
        'FORMAT_VERSION',
        `${manifestPath}: index format ${manifest.version} is newer than this build reads (${indexFormatVersion})`,
      );
    }
    if (manifest.embedder !== options.embedder.name) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `index ${dir} was built with embedder ${manifest.embedder} but ${options.embedder.name} is configured; set embeddingModel accordingly or rebuild the index`,
      );
    }
    const index = new HybridIndex(options);
    index.#dir = dir;
    index.#generation = manifest.generation;
    const vectorsPath = path.join(dir, manifest.vectors);
    const bytes = await readFile(vectorsPath);
    if (bytes.length < 16 || bytes.subarray(0, 8).toString('latin1') !== 'TRBVEC01') {
      throw new TributaryError('CORRUPT_DATA', `${vectorsPath}: not a vectors file`);
    }
    const dim = bytes.readUInt32LE(8);
    const count = bytes.readUInt32LE(12);
    if (bytes.length !== 16 + count * dim * 4) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `${vectorsPath}: expected ${16 + count * dim * 4} bytes, found ${bytes.length}`,
      );
    }
    if (count > 0) {
      const store = new VectorStore(dim, count);
      store.addRaw(bytes.subarray(16), count);
      index.#store = store;
    }
    const recordsPath = path.join(dir, manifest.records);
    const lines = (await readFile(recordsPath, 'utf8')).split('\n').filter((l) => l !== '');
    if (lines.length !== count) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `${recordsPath}: ${lines.length} records for ${count} vectors`,
      );
    }
    for (const [id, line] of lines.entries()) {
      try {
        index.#meta[id] = JSON.parse(line) as StoredMeta;
      } catch (error) {
        throw new TributaryError('CORRUPT_DATA', `${recordsPath}: line ${id + 1} is not JSON`, {
          cause: error,
        });
      }
      index.#indexMeta(id);
    }
    if (manifest.graph && index.#store) {
      index.#graph = Hnsw.decode(
        index.#store,
        await readFile(path.join(dir, manifest.graph)),
        path.join(dir, manifest.graph),
      );
      index.#graph.build();
    } else {
      index.#maintainGraph();
    }
    index.#readOnly = options.readOnly ?? false;
    return index;
  }
}

async function readGeneration(dir: string): Promise<number> {
  try {
    const manifest = JSON.parse(await readFile(path.join(dir, manifestName), 'utf8')) as Partial<Manifest>;
    return typeof manifest.generation === 'number' ? manifest.generation : 0;
  } catch {
    return 0;
  }
}
