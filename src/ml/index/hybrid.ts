import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TributaryError, writeFileAtomic } from '../../core/index.js';
import type { Embedder } from '../embed/embedder.js';
import { Bm25Index, bm25Terms, reciprocalRankFusion } from './bm25.js';
import {
  equalityKeys,
  matchesFilter,
  metadataFieldPattern,
  validateFilter,
  validateMetadata,
  valueKey,
  type Metadata,
  type MetadataFilter,
  type MetadataValue,
} from './filter.js';
import { Hnsw, VectorStore, exactSearchIds, type ScoredId } from './hnsw.js';

/**
 * One passage as the index stores it: an id unique within the index, its text, and flat metadata
 * (string / number fields, e.g. `{company_id: 'acme', document_id: 'd1', page: 2}`) that queries
 * filter on and citations quote.
 */
export interface IndexRecord {
  /**
   * A record whose id is already indexed replaces it. Ids are index-wide; in a tenant index a
   * record may only replace one of its own tenant (another tenant's id is refused).
   */
  id: string;
  text: string;
  metadata: Metadata;
  /** L2-normalised embedding; computed with the index's embedder when absent. */
  vector?: Float32Array | undefined;
}

/**
 * What an index declares about its records, persisted in its manifest so every reader (API, CLI)
 * applies the same rules without knowing the pipeline that wrote it.
 */
export interface IndexSchema {
  /**
   * The metadata field naming the tenant (e.g. `company_id`). When set, every record carries it
   * and every query and delete must filter it to exactly one value: the tenant filter cannot be
   * skipped. Absent for indexes without tenants.
   */
  tenantField?: string | undefined;
  /** The key a citation gives the record id (default `id`), e.g. `chunk_id`. */
  citationId?: string | undefined;
  /** Metadata fields a citation carries, in this order (default: every field of the record). */
  citationFields?: readonly string[] | undefined;
  /**
   * What `ask` answers when no record at all matches the question's filters, `{field}` replaced
   * by the filter's value (e.g. `There are no reviews of product {product_id}.`). Without it the
   * answer is the usual "not found".
   */
  noMatchAnswer?: string | undefined;
}

export interface SearchQuery {
  text: string;
  /** Conditions on metadata fields; must name the tenant when the index declares one. */
  filters?: MetadataFilter | undefined;
  /** Results wanted (default 5). */
  k?: number | undefined;
  /** Stops embedding the query text with a remote model (the asking request timed out or left). */
  signal?: AbortSignal | undefined;
}

/** A passage as a search returns it: the stored record without its vector, with its scores. */
export interface SearchHit extends Omit<IndexRecord, 'vector'> {
  /** Reciprocal-rank-fusion score. */
  score: number;
  /** Cosine similarity of query and passage embeddings. */
  vectorScore: number;
  /** BM25 score (0 when no query term occurs in the passage). */
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

interface StoredRecord {
  id: string;
  text: string;
  metadata: Metadata;
  deleted: boolean;
}

/** A version-1 line (document chunks only, before metadata became generic). */
interface StoredRecordV1 {
  chunkId: string;
  documentId: string;
  filename: string;
  company: string;
  page: number;
  text: string;
  product?: string;
  date?: string;
  deleted: boolean;
}

const manifestName = 'MANIFEST.json';
const indexFormat = 'tributary-hybrid-index';
const indexFormatVersion = 2;

/** What a version-1 index (the documents pipeline's chunks) means in version-2 terms. */
const v1Schema: IndexSchema = {
  tenantField: 'company_id',
  citationId: 'chunk_id',
  citationFields: ['document_id', 'filename', 'page'],
};

function fromV1(r: StoredRecordV1): StoredRecord {
  const metadata: Record<string, MetadataValue> = {
    company_id: r.company,
    document_id: r.documentId,
    filename: r.filename,
    page: r.page,
  };
  if (r.product !== undefined) metadata.product = r.product;
  if (r.date !== undefined) metadata.date = r.date;
  return { id: r.chunkId, text: r.text, metadata, deleted: r.deleted };
}

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
  /** Version 2 on. */
  schema?: IndexSchema;
}

function checkSchema(schema: IndexSchema): IndexSchema {
  for (const field of [schema.tenantField, schema.citationId, ...(schema.citationFields ?? [])]) {
    if (field !== undefined && !metadataFieldPattern.test(field))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `index schema: ${JSON.stringify(field)} is not a valid field name`,
      );
  }
  return {
    ...(schema.tenantField === undefined ? {} : { tenantField: schema.tenantField }),
    ...(schema.citationId === undefined ? {} : { citationId: schema.citationId }),
    ...(schema.citationFields === undefined ? {} : { citationFields: [...schema.citationFields] }),
    ...(schema.noMatchAnswer === undefined
      ? {}
      : { noMatchAnswer: String(schema.noMatchAnswer).slice(0, 500) }),
  };
}

/**
 * Hybrid retrieval index: exact or HNSW vector search plus BM25, fused with reciprocal rank
 * fusion. Metadata filters are applied while candidates are generated in both searches (a posting
 * list per field value narrows the candidates; the vector scan, the HNSW walk and the BM25
 * postings only admit records that pass every condition), never after a global top-k, so a
 * filtered query gets its k best matching passages, and another tenant's passage can neither be
 * returned nor crowd out this tenant's results.
 *
 * @example
 * const index = await HybridIndex.create({ embedder: new HashedEmbedder(), schema: { tenantField: 'company_id' } });
 * await index.add([{ id: 'c1', text: 'Refunds take 5 days.', metadata: { company_id: 'acme', product: 'router' } }]);
 * const hits = await index.search({ text: 'how long do refunds take', filters: { company_id: 'acme' } });
 */
export class HybridIndex {
  readonly embedder: Embedder;
  readonly #options: Required<Omit<HybridIndexOptions, 'embedder'>>;
  #schema: IndexSchema = {};
  #store: VectorStore | undefined;
  #graph: Hnsw | undefined;
  #bm25 = new Bm25Index();
  readonly #records: StoredRecord[] = [];
  readonly #byId = new Map<string, number>();
  /** field → text form of a value → live internal ids carrying it. */
  readonly #postings = new Map<string, Map<string, Set<number>>>();
  #generation = 0;
  #dir: string | undefined;
  #readOnly = false;
  #saving: Promise<unknown> = Promise.resolve();

  private constructor(options: HybridIndexOptions) {
    this.embedder = options.embedder;
    this.#options = {
      hnswThreshold: options.hnswThreshold ?? 5_000,
      exactCandidatesMax: options.exactCandidatesMax ?? 4_000,
      efSearch: options.efSearch ?? 96,
    };
  }

  /** A new, empty index; `dir` (optional) is where `save()` writes. */
  static create(options: HybridIndexOptions & { dir?: string; schema?: IndexSchema }): Promise<HybridIndex> {
    const index = new HybridIndex(options);
    index.#dir = options.dir;
    index.#schema = checkSchema(options.schema ?? {});
    return Promise.resolve(index);
  }

  /** Rebuilds an index from records (e.g. rows read back from the lake). */
  static async fromRecords(
    records: Iterable<IndexRecord>,
    options: HybridIndexOptions & { dir?: string; schema?: IndexSchema },
  ): Promise<HybridIndex> {
    const index = await HybridIndex.create(options);
    await index.add([...records]);
    return index;
  }

  /** What the index declares: tenant field and citation shape. */
  get schema(): IndexSchema {
    return this.#schema;
  }

  /** Number of live (not deleted) records. */
  get count(): number {
    return this.#byId.size;
  }

  get dimensions(): number {
    return this.#store?.dim ?? this.embedder.dimensions;
  }

  #assertWritable(): void {
    if (this.#readOnly) throw new TributaryError('FORBIDDEN', `index ${this.#dir} was opened read-only`);
  }

  /**
   * The filter of a query or delete, checked; with a tenant field it must hold exactly one
   * non-empty tenant value, so no caller can reach across tenants by leaving it out.
   */
  #requireFilters(filters: MetadataFilter | undefined): MetadataFilter {
    const checked = validateFilter(filters);
    const field = this.#schema.tenantField;
    if (field !== undefined) {
      const tenant = checked[field];
      if ((typeof tenant !== 'string' && typeof tenant !== 'number') || valueKey(tenant).trim() === '') {
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `a tenant is required for every query and delete of this index: filter ${field} to exactly one value`,
        );
      }
    }
    return checked;
  }

  /** Adds or replaces (by id) records; missing vectors are embedded in one batch. */
  async add(records: readonly IndexRecord[]): Promise<void> {
    this.#assertWritable();
    if (records.length === 0) return;
    const tenantField = this.#schema.tenantField;
    for (const [i, r] of records.entries()) {
      const where = `index record ${i}${typeof r.id === 'string' ? ` (id ${JSON.stringify(r.id)})` : ''}`;
      if (typeof r.id !== 'string' || r.id === '' || typeof r.text !== 'string') {
        throw new TributaryError('BAD_RECORD', `${where} needs a non-empty string id and a text`, {
          details: { record: i },
        });
      }
      validateMetadata(r.metadata, where);
      if (tenantField !== undefined) {
        const tenant = r.metadata[tenantField];
        if (typeof tenant !== 'string' || tenant.trim() === '')
          throw new TributaryError(
            'BAD_RECORD',
            `${where}: metadata field "${tenantField}" (the tenant) is required and must be a non-empty string`,
            { details: { record: i, field: tenantField } },
          );
        // Ids are index-wide: one tenant's record must never replace another tenant's.
        const existing = this.#byId.get(r.id);
        if (existing !== undefined && this.#records[existing].metadata[tenantField] !== tenant)
          throw new TributaryError('BAD_RECORD', `${where}: the id belongs to another tenant's record`, {
            details: { record: i, field: tenantField },
          });
      }
    }
    const missing = records.filter((r) => r.vector === undefined);
    const embedded = missing.length > 0 ? await this.embedder.embed(missing.map((r) => r.text)) : [];
    let e = 0;
    for (const record of records) {
      const vector = record.vector ?? embedded[e++];
      this.#store ??= new VectorStore(vector.length, 1024);
      const existing = this.#byId.get(record.id);
      if (existing !== undefined) this.#deleteInternal(existing);
      const internal = this.#store.add(vector);
      this.#records[internal] = {
        id: record.id,
        text: record.text,
        metadata: { ...record.metadata },
        deleted: false,
      };
      this.#indexRecord(internal);
    }
    this.#maintainGraph();
  }

  #indexRecord(internal: number): void {
    const record = this.#records[internal];
    if (record.deleted) return;
    this.#byId.set(record.id, internal);
    for (const [field, value] of Object.entries(record.metadata)) {
      let values = this.#postings.get(field);
      if (!values) {
        values = new Map();
        this.#postings.set(field, values);
      }
      const key = valueKey(value);
      let ids = values.get(key);
      if (!ids) {
        ids = new Set();
        values.set(key, ids);
      }
      ids.add(internal);
    }
    this.#bm25.add(internal, record.text);
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

  #deleteInternal(internal: number): void {
    const record = this.#records[internal];
    if (record.deleted) return;
    record.deleted = true;
    this.#byId.delete(record.id);
    for (const [field, value] of Object.entries(record.metadata)) {
      const values = this.#postings.get(field);
      const key = valueKey(value);
      const ids = values?.get(key);
      if (!ids) continue;
      ids.delete(internal);
      if (ids.size === 0) values!.delete(key);
    }
    this.#bm25.delete(internal);
  }

  /** Deletes records by id (ids are index-wide); returns how many existed. */
  deleteIds(ids: readonly string[]): number {
    this.#assertWritable();
    let n = 0;
    for (const id of ids) {
      const internal = this.#byId.get(id);
      if (internal !== undefined) {
        this.#deleteInternal(internal);
        n++;
      }
    }
    return n;
  }

  /**
   * Deletes every record the filter matches (with a tenant field, within one tenant), e.g.
   * `{company_id: 'acme', document_id: 'd1'}` for one document's chunks, except the ids in
   * `keep`; returns how many.
   */
  deleteMatching(filters: MetadataFilter, keep: ReadonlySet<string> = new Set()): number {
    this.#assertWritable();
    const checked = this.#requireFilters(filters);
    if (Object.keys(checked).length === 0)
      throw new TributaryError('INVALID_ARGUMENT', 'deleteMatching needs at least one condition');
    const accept = this.#accept(checked);
    const doomed = [...this.#candidates(checked).ids].filter(
      (internal) => accept(internal) && !keep.has(this.#records[internal].id),
    );
    for (const internal of doomed) this.#deleteInternal(internal);
    return doomed.length;
  }

  /**
   * The candidate ids of a filter: the smallest union of posting lists among its equality and
   * any-of conditions, or every live record when it has none (then `size` is the live count).
   */
  #candidates(filters: MetadataFilter): { ids: Iterable<number>; size: number } {
    let best: Set<number>[] | undefined;
    let bestSize = Infinity;
    for (const field in filters) {
      const keys = equalityKeys(filters[field]);
      if (keys === undefined) continue;
      const values = this.#postings.get(field);
      const sets = keys.flatMap((key) => {
        const ids = values?.get(key);
        return ids ? [ids] : [];
      });
      const size = sets.reduce((sum, ids) => sum + ids.size, 0);
      if (size < bestSize) {
        best = sets;
        bestSize = size;
      }
    }
    if (best === undefined) return { ids: this.#byId.values(), size: this.#byId.size };
    // An any-of condition: the union of its values' lists (a record has one value per field, so
    // the lists are disjoint unless a value is repeated).
    return { ids: best.length === 1 ? best[0] : new Set(best.flatMap((ids) => [...ids])), size: bestSize };
  }

  #accept(filters: MetadataFilter): (internal: number) => boolean {
    return (internal) => {
      const record = this.#records[internal];
      return !record.deleted && matchesFilter(record.metadata, filters);
    };
  }

  /** Vector-only top-k among the records passing the query's filters. */
  vectorSearch(vector: Float32Array, query: Pick<SearchQuery, 'filters'>, k: number): ScoredId[] {
    const filters = this.#requireFilters(query.filters);
    const store = this.#store;
    if (!store) return [];
    const accept = this.#accept(filters);
    const candidates = this.#candidates(filters);
    const exact = () => exactSearchIds(store, vector, k, [...candidates.ids].filter(accept));
    if (!this.#graph || candidates.size <= this.#options.exactCandidatesMax) return exact();
    // Selective filters make the graph walk visit many rejected nodes; widen the beam with the
    // filter's selectivity so enough accepted nodes are found.
    const selectivity = candidates.size / Math.max(1, store.size);
    const ef = Math.min(
      4096,
      Math.ceil(Math.max(this.#options.efSearch, k * 4) / Math.max(selectivity, 0.05)),
    );
    const walked = this.#graph.search(vector, k, ef, accept);
    // A walk that found fewer than k may have missed accepted records (a range condition can be
    // far more selective than the estimate): then scan the candidates, so a filter never costs hits.
    return walked.length >= k ? walked : exact();
  }

  /** Hybrid search: vector and BM25 candidates (3·k each, both filtered) fused by reciprocal rank. */
  async search(query: SearchQuery): Promise<SearchHit[]> {
    const filters = this.#requireFilters(query.filters);
    const k = query.k ?? 5;
    if (this.count === 0) return [];
    const [vector] = await this.embedder.embed([query.text], { signal: query.signal });
    const pool = Math.max(20, k * 3);
    const vectorHits = this.vectorSearch(vector, { filters }, pool);
    const lexicalHits = this.#bm25.search(query.text, pool, this.#accept(filters));
    const vectorScore = new Map(vectorHits.map((h) => [h.id, h.score]));
    const lexicalScore = new Map(lexicalHits.map((h) => [h.id, h.score]));
    const store = this.#store!;
    return reciprocalRankFusion([vectorHits, lexicalHits])
      .slice(0, k)
      .map(({ id: internal, score }) => {
        const record = this.#records[internal];
        let cosine = vectorScore.get(internal);
        if (cosine === undefined) {
          cosine = 0;
          const row = store.get(internal);
          for (let i = 0; i < row.length; i++) cosine += row[i] * vector[i];
        }
        return {
          id: record.id,
          text: record.text,
          metadata: { ...record.metadata },
          score,
          vectorScore: cosine,
          lexicalScore: lexicalScore.get(internal) ?? 0,
        };
      });
  }

  /** BM25 inverse document frequency of each content word of `text` (rarer words weigh more). */
  termWeights(text: string): Map<string, number> {
    return new Map(bm25Terms(text).map((t) => [t, this.#bm25.idf(t)]));
  }

  /** Live records with their vectors, e.g. to re-export or rebuild. */
  *records(): Generator<IndexRecord & { vector: Float32Array }> {
    for (const [internal, record] of this.#records.entries()) {
      if (record.deleted) continue;
      yield {
        id: record.id,
        text: record.text,
        metadata: { ...record.metadata },
        vector: new Float32Array(this.#store!.get(internal)),
      };
    }
  }

  /**
   * Persists the index under its directory. Layout (one generation at a time; a crash at any
   * point leaves the previous generation readable):
   *   MANIFEST.json        {format, version: 2, generation, embedder, dimensions, count, records, vectors,
   *                         graph, schema: {tenantField?, citationId?, citationFields?, noMatchAnswer?}}
   *   records-<gen>.jsonl  one JSON object per internal id, in id order: {id, text, metadata, deleted}
   *                        (version 1, documents only: {chunkId, documentId, filename, company, page,
   *                        text, product?, date?, deleted}; read as metadata company_id, document_id,
   *                        filename, page, product, date with tenant field company_id)
   *   vectors-<gen>.f32    "TRBVEC01" | u32 LE dimensions | u32 LE count | count × dimensions × f32 LE
   *   hnsw-<gen>.bin       the HNSW graph (format documented on `Hnsw.encode`), when one exists
   * Data files are written atomically first, then the manifest is atomically replaced to point at
   * them, then generations older than the previous one are removed.
   */
  save(dir = this.#dir): Promise<void> {
    // Saves run one after another, so two never pick the same generation.
    const run = this.#saving.then(() => this.#saveNow(dir));
    this.#saving = run.catch(() => undefined);
    return run;
  }

  async #saveNow(dir: string | undefined): Promise<void> {
    this.#assertWritable();
    if (dir === undefined) throw new TributaryError('INVALID_ARGUMENT', 'HybridIndex.save needs a directory');
    if (os.endianness() !== 'LE')
      throw new TributaryError('INTERNAL', 'the index file format is little-endian; this platform is not');
    // One consistent snapshot, taken before the first await: records added while the files are
    // written (another job feeding the same index) go into the next save, never half into this one.
    const lines = this.#records.map((r) => JSON.stringify(r)).join('\n');
    const store = this.#store;
    const dim = store?.dim ?? this.embedder.dimensions;
    const count = store?.size ?? 0;
    const body = store ? store.rawBytes() : new Uint8Array(0);
    const vectors = new Uint8Array(16 + body.length);
    vectors.set(new TextEncoder().encode('TRBVEC01'), 0);
    new DataView(vectors.buffer).setUint32(8, dim, true);
    new DataView(vectors.buffer).setUint32(12, count, true);
    vectors.set(body, 16);
    const graph = this.#graph?.encode();
    await mkdir(dir, { recursive: true });
    const generation = Math.max(this.#generation, await readGeneration(dir)) + 1;
    const names = {
      records: `records-${generation}.jsonl`,
      vectors: `vectors-${generation}.f32`,
      graph: graph ? `hnsw-${generation}.bin` : null,
    };
    await writeFileAtomic(path.join(dir, names.records), lines.length > 0 ? `${lines}\n` : '');
    await writeFileAtomic(path.join(dir, names.vectors), vectors);
    if (graph && names.graph) await writeFileAtomic(path.join(dir, names.graph), graph);
    const manifest: Manifest = {
      format: indexFormat,
      version: indexFormatVersion,
      generation,
      embedder: this.embedder.name,
      dimensions: dim,
      count,
      ...names,
      schema: this.#schema,
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
   * query vectors are comparable. `readOnly` refuses writes (the CLI's `ask`). A `schema` given
   * by the writer must keep the saved tenant field (a tenant index never silently loses its
   * tenant filter); its citation settings replace the saved ones. Without one the saved schema
   * applies.
   */
  static async open(
    dir: string,
    options: HybridIndexOptions & { readOnly?: boolean; schema?: IndexSchema },
  ): Promise<HybridIndex> {
    const manifestPath = path.join(dir, manifestName);
    if (!existsSync(manifestPath)) {
      throw new TributaryError(
        'NOT_FOUND',
        `no index at ${dir} (missing ${manifestName}); run the pipeline that feeds it first`,
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
    const saved = manifest.version === 1 ? v1Schema : checkSchema(manifest.schema ?? {});
    if (options.schema !== undefined && options.schema.tenantField !== saved.tenantField) {
      throw new TributaryError(
        'CONFIG_INVALID',
        `index ${dir} has tenant field ${saved.tenantField ?? '(none)'} but ${options.schema.tenantField ?? '(none)'} is declared; rebuild the index`,
      );
    }
    const index = new HybridIndex(options);
    index.#schema = options.schema === undefined ? saved : checkSchema(options.schema);
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
    for (const [internal, line] of lines.entries()) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch (error) {
        throw new TributaryError('CORRUPT_DATA', `${recordsPath}: line ${internal + 1} is not JSON`, {
          cause: error,
        });
      }
      index.#records[internal] =
        manifest.version === 1 ? fromV1(parsed as StoredRecordV1) : (parsed as StoredRecord);
      index.#indexRecord(internal);
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
