import { TributaryError, counter, isTributaryError, toTributaryError } from '../../core/index.js';
import type { Storage } from '../../lake/index.js';
import type { DocumentExtractor } from '../../ml/index.js';
import { originalKey, originalsPrefix } from './ingest.js';
import type { ChunkRecord, EmbeddingRecord, RawDocument } from './payloads.js';

const chunksTotal = counter('tributary_documents_chunks_total', 'Chunks produced by the docproc stage', [
  'company_id',
]);
const embeddedTotal = counter(
  'tributary_documents_embedded_total',
  'Chunks embedded by the embedding stage',
  ['company_id'],
);

/** A chunk as the ML layer's extraction + chunking returns it. */
export interface ExtractedChunk {
  chunk_id: string;
  text: string;
  /** 1-based page for paged formats (PDF); 1 for formats without pages. */
  page: number;
}

/** What docproc needs from the ML layer: bytes of a stored original → chunks with stable ids. */
export type ExtractAndChunk = (input: {
  documentId: string;
  filename: string;
  bytes: Uint8Array;
}) => Promise<ExtractedChunk[]>;

/** What the embedding stage needs from the ML layer. */
export interface DocumentEmbedder {
  /** Vectors in input order, one per text. */
  embed(texts: string[]): Promise<ArrayLike<number>[]>;
}

/** A chunk with its vector, as added to the retrieval index. */
export interface IndexedChunk {
  chunk_id: string;
  document_id: string;
  company_id: string;
  text: string;
  page: number;
  vector: number[];
  /** Original file name, for citations. */
  filename: string;
  /** Upload time of the document (epoch ms). */
  timestamp: number;
}

/** The file name of a stored original is the last segment of its path (sanitised at upload). */
export function filenameOf(s3Path: string): string {
  return s3Path.split('/').pop() ?? s3Path;
}

/**
 * docproc's extraction + chunking through the ML layer's `DocumentExtractor`: each document is
 * read and chunked in a worker thread within its budget (pages, entries, inflated bytes,
 * characters, output, CPU time, heap), so a hostile upload never stalls the process serving the
 * API; over budget it fails with PAYLOAD_TOO_LARGE and is dead-lettered. Chunk ids are stable
 * (content hash + document id + position), so a replayed document yields the same ids.
 */
export function isolatedExtractAndChunk(extractor: DocumentExtractor): ExtractAndChunk {
  return async ({ documentId, filename, bytes }) => {
    const { chunks } = await extractor.extract({ documentId, filename, data: bytes });
    return chunks.map((chunk) => ({ chunk_id: chunk.chunkId, text: chunk.text, page: chunk.page }));
  };
}

export interface DocprocDeps {
  storage: Pick<Storage, 'root' | 'get'>;
  extractAndChunk: ExtractAndChunk;
}

/**
 * The docproc stage (seed 004's docproc-service) for one `documents.raw` payload: reads the stored
 * original, extracts text and chunks it into `chunks.processed` payloads.
 *
 * A document that cannot be parsed (or has no text) throws `DECODE_FAILED` naming the document and
 * the reason, one over its extraction budget `PAYLOAD_TOO_LARGE`, and a missing original `NOT_FOUND`; the stream engine routes both to
 * `documents.raw.dlq` with the reason in the headers. Storage outages stay `IO` errors.
 */
export async function processDocument(document: RawDocument, deps: DocprocDeps): Promise<ChunkRecord[]> {
  const key = originalKey(deps.storage.root, document.s3_path);
  // The original must sit in the record's own company folder: a record naming another company's
  // file would hand that company's text to this one.
  if (!key.startsWith(`${originalsPrefix}/${document.company_id}/`)) {
    throw new TributaryError(
      'PATH_REFUSED',
      `document ${document.document_id}: s3_path ${JSON.stringify(document.s3_path)} is not in company ${document.company_id}'s folder`,
      { details: { document_id: document.document_id } },
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await deps.storage.get(key);
  } catch (error) {
    const wrapped = toTributaryError(error, 'IO');
    if (wrapped.code === 'NOT_FOUND') {
      throw new TributaryError(
        'NOT_FOUND',
        `document ${document.document_id}: original ${document.s3_path} is missing`,
        {
          cause: error,
          details: { document_id: document.document_id },
        },
      );
    }
    throw wrapped;
  }
  const filename = filenameOf(document.s3_path);
  let chunks: ExtractedChunk[];
  try {
    chunks = await deps.extractAndChunk({ documentId: document.document_id, filename, bytes });
  } catch (error) {
    if (isTributaryError(error) && error.domain !== 'user') throw error;
    const reason = error instanceof Error ? error.message : String(error);
    // The code is kept (PAYLOAD_TOO_LARGE for a document over its budget) for the DLQ header.
    throw new TributaryError(
      isTributaryError(error) ? error.code : 'DECODE_FAILED',
      `document ${document.document_id} (${filename}) could not be parsed: ${reason}`,
      {
        cause: error,
        details: { document_id: document.document_id, file: filename },
      },
    );
  }
  if (chunks.length === 0) {
    throw new TributaryError(
      'DECODE_FAILED',
      `document ${document.document_id} (${filename}) has no extractable text`,
      {
        details: { document_id: document.document_id, file: filename },
      },
    );
  }
  chunksTotal.inc({ company_id: document.company_id }, chunks.length);
  return chunks.map((chunk) => ({
    chunk_id: chunk.chunk_id,
    document_id: document.document_id,
    company_id: document.company_id,
    text: chunk.text,
    page: chunk.page,
  }));
}

export interface EmbeddingDeps {
  embedder: DocumentEmbedder;
  /** Where originals live, to find a document's file name for citations. */
  storage?: Pick<Storage, 'root' | 'list'>;
}

/** Vectors are rounded to 6 decimals in `embeddings.ready`: ~1e-6 error, far smaller JSON. */
function roundVector(vector: ArrayLike<number>): number[] {
  return Array.from(vector, (x) => Math.round(x * 1e6) / 1e6);
}

/** What the embedding stage produces per chunk: the topic payload and the index entry. */
export interface EmbeddedChunk {
  record: EmbeddingRecord;
  indexed: IndexedChunk;
}

/**
 * The embedding stage (seed 004's embedding-service) as a batch function for a stream job's
 * `mapBatchAsync`: one embedder call per batch of chunks, each answered with its `embeddings.ready`
 * payload and its retrieval-index entry. A chunk whose document's file name cannot be looked up
 * fails alone; a failed embedder call fails its batch.
 *
 * @example
 * const embed = createEmbeddingStage({ embedder });
 * source.mapBatchAsync((chunks, metas) => embed(chunks, metas), { batchSizeMax: 64 })
 */
export function createEmbeddingStage(
  deps: EmbeddingDeps,
): (chunks: ChunkRecord[], metas: readonly { timestamp: number }[]) => Promise<(EmbeddedChunk | Error)[]> {
  const filenames = new Map<string, string>();
  const filenameFor = async (chunk: ChunkRecord): Promise<string> => {
    const cached = filenames.get(chunk.document_id);
    if (cached !== undefined) return cached;
    let name = chunk.document_id;
    if (deps.storage) {
      const objects = await deps.storage.list(`${originalsPrefix}/${chunk.company_id}/${chunk.document_id}/`);
      if (objects[0]) name = filenameOf(objects[0].path);
    }
    // Bounded cache: documents are processed in bursts, so forgetting old ones costs little.
    if (filenames.size >= 10_000) filenames.clear();
    filenames.set(chunk.document_id, name);
    return name;
  };

  return async (chunks, metas) => {
    const [vectors, names] = await Promise.all([
      deps.embedder.embed(chunks.map((chunk) => chunk.text)),
      Promise.all(
        chunks.map((chunk) => filenameFor(chunk).catch((error: unknown) => toTributaryError(error, 'IO'))),
      ),
    ]);
    if (vectors.length !== chunks.length)
      throw new TributaryError(
        'EXTERNAL',
        `embedder returned ${vectors.length} vectors for ${chunks.length} texts`,
      );
    return chunks.map((chunk, i) => {
      const filename = names[i];
      if (filename instanceof Error) return filename;
      const record: EmbeddingRecord = {
        chunk_id: chunk.chunk_id,
        document_id: chunk.document_id,
        company_id: chunk.company_id,
        vector: roundVector(vectors[i]),
      };
      embeddedTotal.inc({ company_id: chunk.company_id });
      return {
        record,
        indexed: { ...record, text: chunk.text, page: chunk.page, filename, timestamp: metas[i].timestamp },
      };
    });
  };
}
